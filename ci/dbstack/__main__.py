from dbstack.cli import main

raise SystemExit(main())
