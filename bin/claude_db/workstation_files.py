"""`claude-db-token settings` and `claude-db-token config check`: the files a workstation install writes,
built and checked by the package so that the workstation role never re-implements them.

Standard library only (the role runs these from the collection's bin/ with the controller's Python).
"""

import json
import os
import sys

from . import user_service
from .config import load_config, parse_config
from .errors import ConfigError, say
from .managed_settings import managed_settings, merged

STDIN = "-"


def run_command(args) -> int:
    if args.command == "config":
        config = _config(args.file or args.config)
        say("config %s is valid" % config.path)
        return 0
    if args.units:
        return _print_units(args)
    if args.service and not args.managed:
        raise ConfigError("--service goes with --managed: settings --managed --service [--uid N]")
    if args.managed:
        if args.config == STDIN and args.merge_into == STDIN:
            raise ConfigError("--config - and --merge-into - both read stdin; give one of them a file")
        if args.config == STDIN and not args.api_key_helper:
            raise ConfigError("with --config - pass --api-key-helper CMD (the default names the config file)")
        config = _config(args.config)
        port = user_service.port(config, args.uid) if args.service else None
        ours = managed_settings(config, args.api_key_helper, port)
        for more in args.add or ():
            ours = merged(ours, _json_object(more, "--add"))
    elif args.ours is not None:
        ours = _json_object(args.ours, "--ours")
    else:
        raise ConfigError("settings needs --managed or --ours JSON; see `claude-db-token settings --help`")
    if args.merge_into is not None:
        ours = merged(_settings_file(args.merge_into), ours, _json_object(args.previous, "--previous"))
    sys.stdout.write(json.dumps(ours, indent=2) + "\n")
    return 0


def _print_units(args) -> int:
    """`settings --units KIND`: the unit files (service_units.py) as JSON {file name: content}."""
    from .service_units import unit_files
    if not args.unit_command:
        raise ConfigError("--units needs --command CMD, the absolute path of the claude-db-token the service runs")
    if args.config == STDIN and not args.unit_config:
        raise ConfigError("with --config - pass --unit-config PATH (the config file the service reads)")
    config = _config(args.config)
    config_path = args.unit_config or os.path.abspath(config.path)
    files = unit_files(args.units, config, args.unit_command, config_path, args.uid)
    sys.stdout.write(json.dumps(files, indent=2) + "\n")
    return 0


def _config(path):
    if path == STDIN:
        return parse_config(sys.stdin.buffer.read(), "<stdin>")
    return load_config(path)


def _json_object(text, option: str):
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError as e:
        raise ConfigError("%s is not valid JSON (%s); pass a JSON object" % (option, e))
    if not isinstance(value, dict):
        raise ConfigError("%s must be a JSON object, got %s" % (option, type(value).__name__))
    return value


def _settings_file(path: str) -> dict:
    """The settings file's object; a missing or empty file is {}."""
    if path == STDIN:
        text = sys.stdin.read()
    else:
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except FileNotFoundError:
            text = ""
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError("cannot read settings file %s: %s" % (path, e))
    if not text.strip():
        return {}
    try:
        return _json_object(text, "settings file %s" % path)
    except ConfigError as e:
        raise ConfigError("%s; fix or move the file" % e)
