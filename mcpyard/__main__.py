from mcpyard.cli import main

raise SystemExit(main())
