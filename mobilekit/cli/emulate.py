"""`mobilekit emulate setup|status|devices`: the aarch64 root for ARM emulation."""

from __future__ import annotations

from mobilekit.cli.flags import EXIT_USAGE, Parser


def add_parser(sub) -> None:
    em = sub.add_parser("emulate", help="the aarch64 root for ARM emulation: setup, status, devices",
                        description="Manage the cached aarch64 root (Debian arm64 Python + the aarch64 "
                                    "ai-edge-litert wheel + an instruction-counting qemu plugin) that "
                                    "`bench --emulate/--device` runs models in.")
    ems = em.add_subparsers(dest="emulate_command", parser_class=Parser, required=True)
    es = ems.add_parser("setup", help="build the root (needs root for apt-get and mmdebstrap; under a minute)")
    es.add_argument("--force", action="store_true", help="rebuild even if the root is up to date")
    es.add_argument("--mirror", default=None, help="Debian mirror URL (default: mmdebstrap's)")
    st = ems.add_parser("status", help="what is there, and whether it matches this install")
    st.add_argument("--json", action="store_true", help="print the status as JSON")
    ems.add_parser("devices", help="the device profiles and the cost model's calibration")


def run(args) -> int:
    import json

    from mobilekit.emulate import root

    if args.emulate_command == "setup":
        s = root.setup(force=args.force, mirror=args.mirror)
        return 0 if s["ready"] else EXIT_USAGE
    if args.emulate_command == "status":
        s = root.status()
        if args.json:
            print(json.dumps(s, indent=2))
        else:
            print(f"root: {s['root']}")
            print(f"ready: {'yes' if s['ready'] else 'no, ' + s['problem']}")
            for tool, where in s["tools"].items():
                print(f"{tool}: {where or 'missing (Debian package ' + root.HOST_TOOLS[tool] + ')'}")
            m = s.get("manifest")
            if m:
                print(f"guest: Python {m['guest_python']}, ai-edge-litert {m['ai_edge_litert']}, numpy {m['numpy']}")
                print(f"CPU models: {', '.join(m['cpus'])}")
        return 0 if s["ready"] else 1
    from mobilekit.bench import devices

    for name, d in devices.devices().items():
        cores = " + ".join(f"{n}x {core} @ {ghz:g} GHz" for core, n, ghz in d.clusters)
        print(f"{name:<20} {d.title}: {cores}; emulated as {d.qemu_cpu}, {d.threads} threads")
    fitted = devices.ipc()
    print(f"cost model: {devices.basis()}")
    print(f"fitted instructions per relative cycle: float {fitted['float']:.3f}, int8 {fitted['int8']:.3f}")
    return 0
