#!/usr/bin/env bash
# install_test.sh - `meson install` (what `make install` runs) into a
# staging tree (DESTDIR), then what an operator and a library user do with
# it: every file in its place; the installed kcobrad checks the installed
# configuration (-t); a program built with `pkg-config kingcobra` against
# the installed headers links both the shared and the static library and
# runs; the systemd unit names the installed paths, carries its hardening,
# and `systemd-analyze verify` accepts it where systemd-analyze exists.
#   install_test.sh BUILD_DIR SANITIZE   (SANITIZE: meson's b_sanitize)
set -euo pipefail
build=$(cd "${1:?build dir}" && pwd)
sanitize=${2:-none}
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
fail() { echo "install_test: FAIL: $*" >&2; exit 1; }

meson install -C "$build" --no-rebuild --quiet --destdir "$stage" >/dev/null
prefix=$(meson introspect "$build" --buildoptions |
  python3 -c 'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"]=="prefix"))')
libdir=$(meson introspect "$build" --buildoptions |
  python3 -c 'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"]=="libdir"))')
sysconfdir=$(meson introspect "$build" --buildoptions |
  python3 -c 'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"]=="sysconfdir"))')
root=$stage$prefix
case $sysconfdir in /*) etc=$stage$sysconfdir ;; *) etc=$root/$sysconfdir ;; esac
lib=$root/$libdir

for file in "$root/bin/kcobrad" "$root/bin/kcobra" "$lib/libkingcobra.so" "$lib/libkingcobra.a" \
    "$root/include/kingcobra/kingcobra.h" "$root/include/kingcobra/err.h" \
    "$root/include/kingcobra/export.h" "$lib/pkgconfig/kingcobra.pc" \
    "$etc/kingcobra/kcobrad.conf" "$root/lib/systemd/system/kcobrad.service" \
    "$root/share/man/man1/kcobra.1" "$root/share/man/man8/kcobrad.8" \
    "$root/share/bash-completion/completions/kcobra"; do
  [ -e "$file" ] || fail "not installed: ${file#"$stage"}"
done
echo "install_test: every file in place under ${root#"$stage"}"

# The installed daemon accepts the installed configuration.
"$root/bin/kcobrad" -c "$etc/kingcobra/kcobrad.conf" -t >/dev/null 2>&1 ||
  fail "kcobrad -t refuses the installed kcobrad.conf"
"$root/bin/kcobra" --help >/dev/null || fail "the installed kcobra does not run"

# A library user: pkg-config finds the flags; shared and static both link.
cat >"$stage/user.c" <<'PROGRAM'
#include <stdio.h>
#include <string.h>
#include <kingcobra/kingcobra.h>
int main(void)
{
    kc_client_options options;
    kc_client_options_init(&options);
    const char *text = kc_strerror(KC_ERR_TIMEOUT);
    printf("%s\n", text);
    return text != NULL && strlen(text) > 0 ? 0 : 1;
}
PROGRAM
export PKG_CONFIG_PATH=$lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$stage
cflags=$(pkg-config --cflags kingcobra) || fail "pkg-config does not know kingcobra"
san=()
[ "$sanitize" = none ] || san=(-fsanitize="$sanitize")
cc "${san[@]}" $cflags "$stage/user.c" -o "$stage/user-shared" $(pkg-config --libs kingcobra) ||
  fail "cannot link with the shared libkingcobra"
LD_LIBRARY_PATH=$lib "$stage/user-shared" >/dev/null || fail "the shared-library program fails"
cc "${san[@]}" $cflags "$stage/user.c" -o "$stage/user-static" \
  -Wl,-Bstatic -lkingcobra -Wl,-Bdynamic $(pkg-config --static --libs-only-L kingcobra) \
  $(pkg-config --static --libs kingcobra | sed 's/-lkingcobra//') ||
  fail "cannot link with the static libkingcobra"
"$stage/user-static" >/dev/null || fail "the static-library program fails"
echo "install_test: a program links libkingcobra (shared and static) through pkg-config"

# The unit: the installed paths, its own user, the hardening, SIGHUP reload.
unit=$root/lib/systemd/system/kcobrad.service
for line in "ExecStart=$prefix/bin/kcobrad -c ${etc#"$stage"}/kingcobra/kcobrad.conf" \
    "DynamicUser=yes" "StateDirectory=kingcobra" "ProtectSystem=strict" \
    "NoNewPrivileges=yes" "Restart=on-failure" 'ExecReload=/bin/kill -HUP $MAINPID'; do
  grep -qxF "$line" "$unit" || fail "kcobrad.service lacks: $line"
done
if command -v systemd-analyze >/dev/null; then
  # Checked as installed but pointing at the staged binary and config.
  mkdir -p "$stage/verify"
  sed -e "s#$prefix/bin/#$root/bin/#g" -e "s#${etc#"$stage"}/#$etc/#g" "$unit" \
    >"$stage/verify/kcobrad.service"
  out=$(systemd-analyze verify "$stage/verify/kcobrad.service" 2>&1) ||
    fail "systemd-analyze: $out"
  echo "install_test: systemd-analyze verify accepts kcobrad.service"
fi
# The man pages render without a warning and say what --help says: every
# command, with its own flags.
for page in "$root/share/man/man1/kcobra.1" "$root/share/man/man8/kcobrad.8"; do
  warnings=$(groff -man -Tutf8 -ww -z "$page" 2>&1) || fail "groff: $warnings"
  [ -z "$warnings" ] || fail "groff warns about ${page##*/}: $warnings"
done
rendered=$(MANWIDTH=120 man -l "$root/share/man/man1/kcobra.1" 2>/dev/null | col -b)
for command in $("$root/bin/kcobra" --help | awk '/^Commands:/ {on = 1; next}
    on && /^$/ {exit} on {print $1}'); do
  [ "$command" = help ] && continue
  grep -q "^   kcobra $command\$" <<<"$rendered" || fail "kcobra.1 has no section for $command"
done
for flag in $("$root/bin/kcobra" ledger --help | grep -oE '^ +--[a-z-]+'); do
  grep -q -- "$flag" <<<"$rendered" || fail "kcobra.1 lacks ledger's $flag"
done
MANWIDTH=120 man -l "$root/share/man/man8/kcobrad.8" 2>/dev/null | col -b | grep -q -- "--config" ||
  fail "kcobrad.8 lacks --config"
echo "install_test: kcobra.1 and kcobrad.8 render cleanly and cover every command and flag"

# The completion offers what --help lists.
completions() {
  bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _kcobra
    echo "${COMPREPLY[*]}"' _ "$root/share/bash-completion/completions/kcobra" "$@"
}
[ "$(completions kcobra led)" = ledger ] || fail "completion: kcobra led"
[ "$(completions kcobra --server nats://a:4222 le)" = ledger ] || fail "completion after --server"
[ "$(completions kcobra queue serve --metr)" = --metrics-listen ] || fail "completion: queue flags"
[ "$(completions kcobra econ maxf)" = maxflow ] || fail "completion: econ subcommands"
[ "$(completions kcobra --tim)" = --timeout ] || fail "completion: common options"
echo "install_test: the bash completion offers commands, subcommands and options"
echo "1 passed, 0 failed"
