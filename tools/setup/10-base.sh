# git, Node.js (npm-installed MCP servers and tools) and redis-server (shared rate limits).
scripts/apt-install git nodejs npm redis-server
