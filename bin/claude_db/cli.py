"""`claude-db-token`: the credential helper's command line.

stdout carries only machine output (the token JSON, the bare token, status);
progress, prompts and errors go to stderr, one line each. Exit codes: 0 ok,
1 authentication or network failure (or "no valid cached token" for --check),
2 usage or config error.

Printing a cached token is the hot path (Claude Code's apiKeyHelper runs it on
every request batch), so the plain forms skip argparse and import only the
standard library modules that Python itself already loaded.
"""

from __future__ import annotations

import json
import sys

from .config import environment_help, load_config
from .credentials import HELPER_MIN_LIFE, SAFETY_MARGIN, cached_token, get_token
from .errors import ConfigError, report, say

PROG = "claude-db-token"

DESCRIPTION = """\
Print a Databricks OAuth token for the signed-in user, obtained with the company
sign-in (Entra ID or another OIDC IdP) and RFC 8693 token exchange; never a PAT.

  claude-db-token            {"token": "...", "expires_in": N} on stdout
  claude-db-token --raw      the bare token (Claude Code's apiKeyHelper)
  claude-db-token --check    exit 0 if a cached token is still valid, else 1 (no network)
  claude-db-token serve      the per-user service plain `claude` and the IDEs use (see `serve --help`)

A cached token is printed without any network access. Otherwise the helper
exchanges the cached ID token, or refreshes it with the IdP, or - the first
time, or when the IdP no longer accepts the refresh - signs you in: in the
browser, or with a device code over SSH / without a display.

Config file search order: --config PATH, $CLAUDE_DB_CONFIG, ./config.json,
~/.databricks-claude-gateway/config.json, /etc/databricks-claude-gateway/config.json. Secrets are kept in the OS keyring
when one is usable, else in 0600 files in ~/.databricks-claude-gateway/.
"""

EPILOG = """\
exit codes: 0 ok; 1 sign-in, exchange or network failure (--check: no valid
cached token); 2 usage or config error.

environment:
%s
examples:
  claude-db-token login --device     sign in from an SSH session
  claude-db-token status             who is signed in, and until when
  claude-db-token doctor             check config, IdP, exchange and endpoint
  Claude Code settings.json:         {"apiKeyHelper": "claude-db-token --raw"}
"""


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        plain = _plain_form(argv)
        if plain is not None:
            return _print_token(*plain)
        return _run(_parser().parse_args(argv))
    except KeyboardInterrupt:
        sys.stderr.write("%s: cancelled\n" % PROG)
        return 1
    except Exception as e:  # noqa: B902 - every failure ends as one line and an exit code
        return report(PROG, e)


def _plain_form(argv: list):
    """(mode, config_path) for `[--raw | --check | --service-key] [--config PATH]`, the forms that need no
    argparse."""
    mode, path, rest = "json", None, list(argv)
    while rest:
        arg = rest.pop(0)
        if arg in ("--raw", "--check", "--service-key") and mode == "json":
            mode = arg[2:]
        elif arg == "--config" and rest and path is None and not rest[0].startswith("-"):
            path = rest.pop(0)
        elif arg.startswith("--config=") and path is None and len(arg) > len("--config="):
            path = arg[len("--config="):]
        else:
            return None
    return mode, path


def _print_token(mode: str, config_path, method=None) -> int:
    config = load_config(config_path)
    if mode == "service-key":
        from .service_client import print_service_key
        return print_service_key(config)
    if mode == "check":
        token = cached_token(config)
        status = {"valid": token is not None, "expires_in": token.expires_in if token else 0}
        sys.stdout.write(json.dumps(status) + "\n")
        return 0 if token else 1
    token = get_token(config, interactive=True, method=method,
                      min_life=HELPER_MIN_LIFE if mode == "raw" else SAFETY_MARGIN)
    if mode == "raw":
        sys.stdout.write(token.access_token + "\n")
    else:
        sys.stdout.write(json.dumps({"token": token.access_token, "expires_in": token.expires_in}) + "\n")
    return 0


def _run(args) -> int:
    method = "device" if args.device else "browser" if args.browser else None
    if args.command is None:
        if args.raw + args.check + args.service_key > 1:
            raise ConfigError("--raw, --check and --service-key cannot be combined; pick one")
        mode = "raw" if args.raw else "check" if args.check else "service-key" if args.service_key else "json"
        return _print_token(mode, args.config, method)
    if args.raw or args.check or args.service_key:
        raise ConfigError("--raw/--check/--service-key go without a subcommand; run `%s %s` alone"
                          % (PROG, args.command))
    if args.command in ("settings", "config"):
        from .workstation_files import run_command
        return run_command(args)
    config = load_config(args.config)
    if args.command == "login":
        from .credentials import sign_in
        token = sign_in(config, method)
        say("signed in; Databricks token valid for %d min" % (token.expires_in // 60))
        return 0
    if args.command == "logout":
        from .credentials import sign_out
        removed = sign_out(config)
        say("signed out; removed %s" % (", ".join(removed) if removed else "nothing (no cached sign-in)"))
        from .service import rotate_key_command
        return rotate_key_command()
    if args.command == "serve":
        from .service import run_command
        return run_command(config, args)
    if args.command == "status":
        from .status import print_status
        return print_status(config, as_json=args.json)
    from .doctor import run_doctor
    return run_doctor(config)


def _parser():
    import argparse

    # Shared by the top level and every subcommand; SUPPRESS so a subcommand's defaults do not
    # overwrite what was given before it (`--config x status`).
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    common.add_argument("--config", metavar="PATH", help="config file (default: see the search order above)")
    signing_in = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    how = signing_in.add_mutually_exclusive_group()
    how.add_argument("--device", action="store_true", help="sign in with a device code (SSH, no display)")
    how.add_argument("--browser", action="store_true", help="sign in in a browser on this machine")

    parser = argparse.ArgumentParser(prog=PROG, parents=[common, signing_in], description=DESCRIPTION,
                                     epilog=EPILOG % environment_help(PROG),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--raw", action="store_true",
                     help="print the bare token (for Claude Code's apiKeyHelper; renewed when under 10 min are left)")
    out.add_argument("--check", action="store_true",
                     help="exit 0 if a cached token is valid, 1 if not; JSON status on stdout; no network, no prompt")
    out.add_argument("--service-key", action="store_true",
                     help="print the key for your claude-db-token serve (its apiKeyHelper; starts it if needed)")
    parser.set_defaults(config=None, device=False, browser=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    raw = argparse.RawDescriptionHelpFormatter
    sub.add_parser("login", parents=[common, signing_in], formatter_class=raw, help="sign in now (even if signed in)",
                   description="Sign in with the company IdP now, even when a sign-in is cached, and fetch a "
                               "fresh Databricks token.\nBrowser by default; --device over SSH or without a display.")
    sub.add_parser("logout", parents=[common], formatter_class=raw, help="forget every cached secret for this config",
                   description="Delete the cached Databricks token and the IdP sign-in (refresh token) of this "
                               "config,\nfrom the OS keyring and from ~/.databricks-claude-gateway/.")
    status = sub.add_parser("status", parents=[common], formatter_class=raw, help="who is signed in, and until when",
                            description="Show who is signed in, with which issuer, and when the ID token and the "
                                        "Databricks token expire.\nNo network. Exit 0 when signed in, 1 when not.")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    sub.add_parser("doctor", parents=[common], formatter_class=raw, help="check config, IdP, exchange and endpoint",
                   description="Check, one line each with the fix: the config, the token store, the IdP's "
                               "discovery document,\nthe sign-in, a token exchange and the serving endpoint's "
                               "state. Exit 0 when all pass, else 1.")
    _workstation_file_commands(sub, common)
    from .service import add_command
    add_command(sub, common)
    return parser


def _workstation_file_commands(sub, common):
    """`settings` and `config check`: what the workstation role writes, asked of the package (no sign-in)."""
    raw = __import__("argparse").RawDescriptionHelpFormatter
    settings = sub.add_parser(
        "settings", parents=[common], formatter_class=raw, help="print Claude Code managed settings (for plain claude)",
        description="Print Claude Code's managed settings for this config: apiKeyHelper runs claude-db-token --raw,\n"
                    "env points Claude Code at the endpoint, WebSearch is denied (what claude-db's helper mode uses).\n"
                    "With --merge-into, print an existing settings file with them merged in: keys the file already\n"
                    "has stay; --previous (what was merged last time) takes out what is no longer ours.\n"
                    "--config - and --merge-into - read stdin (one of them).",
        epilog="examples:\n"
               "  claude-db-token settings --managed --api-key-helper 'claude-db-token --raw'\n"
               "  claude-db-token settings --merge-into /etc/claude-code/managed-settings.json \\\n"
               "      --ours \"$(claude-db-token settings --managed)\"\n"
               "  claude-db-token settings --merge-into FILE --ours '{}' --previous \"$OURS\"   (take ours out)\n"
               "  claude-db-token settings --units systemd --command ~/.local/bin/claude-db-token   (unit files)")
    settings.add_argument("--managed", action="store_true", help="the managed settings for --config")
    settings.add_argument("--api-key-helper", metavar="CMD",
                          help="the apiKeyHelper command (default: this claude-db-token --raw --config PATH)")
    settings.add_argument("--service", action="store_true",
                          help="point plain claude at the user's claude-db-token serve (apiKeyHelper: "
                               "claude-db-token --service-key) instead of the workspace")
    settings.add_argument("--uid", type=int, metavar="N",
                          help="with --service: the user whose service port it is (default: yours)")
    settings.add_argument("--units", choices=["systemd", "launchd"],
                          help="instead: the files that start the user's claude-db-token serve on demand "
                               "(JSON {file name: content}); with --command, --uid")
    settings.add_argument("--command", metavar="CMD", dest="unit_command",
                          help="with --units: the claude-db-token the service runs, an absolute path")
    settings.add_argument("--unit-config", metavar="PATH",
                          help="with --units: the config the service reads (default: --config's file)")
    settings.add_argument("--add", metavar="JSON", action="append",
                          help="more settings to merge into --managed's (objects merge, lists append); repeatable")
    settings.add_argument("--merge-into", metavar="FILE", help="print FILE (JSON; missing = {}) with ours merged in")
    settings.add_argument("--ours", metavar="JSON", help="the settings to merge (default: --managed's)")
    settings.add_argument("--previous", metavar="JSON", help="the settings merged into FILE last time")
    check = sub.add_parser("config", parents=[common], formatter_class=raw, help="check a config file",
                           description="`config check [FILE]`: read FILE (- for stdin; default: --config or the "
                                       "search order)\nexactly as claude-db does; exit 0 when valid, else 2 with "
                                       "a one-line message naming the key.")
    check.add_argument("action", choices=["check"])
    check.add_argument("file", nargs="?", metavar="FILE")
