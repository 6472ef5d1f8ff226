# The hub entries the tests start (npm lock in tools/hub, PyPI venvs under ~/.cache/mcpyard/hub).
bash tools/hub/setup.sh
