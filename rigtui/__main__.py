from __future__ import annotations

from rigtui.cli import main

raise SystemExit(main())
