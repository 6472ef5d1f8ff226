# Headless Chromium for the console's browser tests (driven by Playwright for Python, pointed at
# /usr/bin/chromium: Playwright never downloads a browser here).
scripts/apt-install chromium fonts-dejavu-core
test -x /usr/bin/chromium
