#!/usr/bin/env python3
"""gen-docs.py - the man pages of kcobra (1) and kcobrad (8) and kcobra's
bash completion, generated at build time from the built binaries' --help,
which their flag and command tables print: the pages and the completion
cannot disagree with --help (docs/operations.md, "Installing").

    gen-docs.py KCOBRA KCOBRAD OUTDIR VERSION

Writes OUTDIR/kcobra.1, OUTDIR/kcobrad.8 and OUTDIR/kcobra (the completion,
named as bash-completion looks it up). The help texts go into the pages
as they are (preformatted), escaped for roff; the completion offers the
commands, econ's subcommands, the common options and each command's own.
"""
import re
import subprocess
import sys

HELP_TIMEOUT_S = 60
OPTION = re.compile(r"^\s{1,8}(?:-[A-Za-z], )?(--[a-z][a-z0-9-]*)(?:[ =]([A-Z][A-Z_:]*|<[a-z_]+>))?")
LISTED = re.compile(r"^  ([a-z][a-z0-9-]*)\s{2,}\S")


def run_help(binary, *arguments):
    """What binary prints for arguments (stdout, and stderr if stdout is empty)."""
    done = subprocess.run([binary, *arguments], capture_output=True, text=True,
                          timeout=HELP_TIMEOUT_S, check=False)
    return done.stdout if done.stdout.strip() else done.stderr


def section(text, title):
    """The indented lines under the line 'title' up to the next blank line."""
    lines, inside = [], False
    for line in text.splitlines():
        if line.rstrip() == title:
            inside = True
        elif inside and not line.strip():
            break
        elif inside:
            lines.append(line)
    return lines


def listed_names(text, title):
    return [m.group(1) for m in (LISTED.match(line) for line in section(text, title)) if m]


def options(text):
    """(flag, takes_value) of every option line of a help text."""
    found = []
    for line in text.splitlines():
        match = OPTION.match(line)
        if match and match.group(1) not in (flag for flag, _ in found):
            found.append((match.group(1), match.group(2) is not None))
    return found


def roff_text(text):
    """Help text as preformatted roff: backslashes and hyphens escaped, no
    line taken for a request."""
    out = []
    for line in text.rstrip("\n").splitlines():
        line = line.replace("\\", "\\e").replace("-", "\\-")
        if line.startswith((".", "'")):
            line = "\\&" + line
        out.append(line)
    return "\n".join(out)


def page(name, number, version, summary, synopsis, blocks, see_also):
    lines = [f'.TH {name.upper()} {number} "" "kingcobra {version}" '
             f'"{"User Commands" if number == "1" else "System Administration"}"',
             ".SH NAME", f"{name} \\- {summary}", ".SH SYNOPSIS", f".B {name}", synopsis]
    for title, subsections in blocks:
        lines.append(f".SH {title}")
        for subtitle, text in subsections:
            if subtitle:
                lines.append(f".SS {subtitle}")
            lines += [".nf", roff_text(text), ".fi"]
    lines += [".SH SEE ALSO", see_also]
    return "\n".join(lines) + "\n"


def command_helps(kcobra, top):
    """[(title, help)] for every command, and econ's subcommands after econ."""
    helps = []
    for command in listed_names(top, "Commands:"):
        if command == "help":
            continue
        text = run_help(kcobra, command, "--help")
        helps.append((f"kcobra {command}", text))
        for sub in listed_names(text, "Subcommands:"):
            helps.append((f"kcobra {command} {sub}", run_help(kcobra, command, sub, "--help")))
    return helps


def completion(top, helps):
    common = options("\n".join(section(top, "Common options (every command takes them, "
                                            "before or after its name):")))
    commands = listed_names(top, "Commands:")
    # A flag skips the next word when it takes a value wherever it appears
    # (--replicas is a count for queue serve, a switch for ledger audit).
    takes_value = {}
    for text in [top] + [h for _, h in helps]:
        for flag, takes in options(text):
            takes_value[flag] = takes_value.get(flag, True) and takes
    valued = sorted(flag for flag, takes in takes_value.items() if takes)
    cases = []
    for title, text in helps:
        words = title.split()[1:]
        flags = " ".join(flag for flag, _ in options(text))
        subs = " ".join(listed_names(text, "Subcommands:"))
        cases.append(f'        "{" ".join(words)}") words="{flags}"; subs="{subs}" ;;')
    common_flags = " ".join(flag for flag, _ in common)
    return f"""# bash completion for kcobra, generated from its --help (scripts/gen-docs.py).
_kcobra() {{
    local cur=${{COMP_WORDS[COMP_CWORD]}} path="" skip=0 i word words="" subs=""
    local common="{common_flags}"
    for ((i = 1; i < COMP_CWORD; i++)); do
        word=${{COMP_WORDS[i]}}
        if ((skip)); then skip=0; continue; fi
        case " {' '.join(valued)} " in *" $word "*) skip=1; continue ;; esac
        [[ $word == -* ]] && continue
        case $path in "" | econ) path=${{path:+$path }}$word ;; esac
    done
    ((skip)) && {{ COMPREPLY=(); compopt -o default 2>/dev/null; return; }}
    if [[ -z $path ]]; then
        [[ $cur == -* ]] && words=$common || words="{' '.join(commands)}"
    else
        case $path in
{chr(10).join(cases)}
        esac
        [[ $cur == -* || -z $subs ]] && words="$words $common" || words=$subs
    fi
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
}}
complete -o default -F _kcobra kcobra
"""


def main():
    kcobra, kcobrad, outdir, version = sys.argv[1:5]
    top = run_help(kcobra, "--help")
    helps = command_helps(kcobra, top)
    with open(f"{outdir}/kcobra.1", "w", encoding="utf-8") as out:
        out.write(page("kcobra", "1", version, "the KingCobra command-line tool",
                       "[options] <command> [command options] [arguments]",
                       [("DESCRIPTION", [("", top)]), ("COMMANDS", helps)],
                       ".BR kcobrad (8)"))
    with open(f"{outdir}/kcobrad.8", "w", encoding="utf-8") as out:
        out.write(page("kcobrad", "8", version,
                       "the KingCobra broker: NATS protocol, with its components",
                       "[options]", [("OPTIONS", [("", run_help(kcobrad, "--help"))]),
                                     ("FILES", [("", "/etc/kingcobra/kcobrad.conf  the "
                                                     "configuration kcobrad.service starts "
                                                     "it with, and the installed kcobrad's "
                                                     "without -c\n/var/lib/kingcobra  its "
                                                     "state directory, the installed "
                                                     "kcobrad's data_dir unless the file "
                                                     "sets one (relative to the file)")])],
                       ".BR kcobra (1)"))
    with open(f"{outdir}/kcobra", "w", encoding="utf-8") as out:
        out.write(completion(top, helps))


if __name__ == "__main__":
    main()
