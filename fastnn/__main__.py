from fastnn.cli.app import main

raise SystemExit(main())
