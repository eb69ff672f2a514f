from dbstack.cli.main import main

raise SystemExit(main())
