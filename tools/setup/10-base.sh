# git, Node.js with npm (npm-installed MCP servers and tools) and redis-server (shared rate
# limits). Node.js may come from another source than Debian, with npm inside its package:
# ask by command, not by Debian package name, so that the two never conflict.
need=()
command -v git >/dev/null || need+=(git)
command -v npm >/dev/null || need+=(nodejs npm)
command -v redis-server >/dev/null || need+=(redis-server)
[ ${#need[@]} -eq 0 ] || scripts/apt-install "${need[@]}"
