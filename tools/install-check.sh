#!/bin/bash
# `make install` as a user of the library meets it (issue 12): install into
# a temporary prefix, build examples/hello_lethe.c outside the tree with
# `pkg-config --cflags --libs lethe` and run it; the soname, the man pages
# and the exported symbols (abi/lethe.symbols); an unwritable prefix
# refused with one clear line; `make uninstall` leaves no file behind.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix="$tmp/prefix"
fail() { echo "install-check: $*" >&2; exit 1; }

make -s install PREFIX="$prefix" > "$tmp/install.log" 2>&1 || { cat "$tmp/install.log"; fail "make install failed"; }
for f in lib/liblethe.a lib/liblethe.so lib/liblethe.so.0 include/lethe.h lib/pkgconfig/lethe.pc \
         bin/lethe share/man/man1/lethe.1 share/man/man1/lethe-unlearn.1 share/lethe/tuned.json; do
    [ -e "$prefix/$f" ] || fail "$f was not installed"
done
readelf -d "$prefix/lib/liblethe.so" > "$tmp/readelf.txt"
grep -q 'SONAME.*\[liblethe\.so\.0\]' "$tmp/readelf.txt" || fail "no soname liblethe.so.0"
man -l "$prefix/share/man/man1/lethe-unlearn.1" > "$tmp/man.txt" 2>/dev/null || true
grep -q -- "--utility-budget" "$tmp/man.txt" ||
    fail "lethe-unlearn(1) lacks an option of lethe help unlearn"

# A program outside the tree, as its users build it.
mkdir "$tmp/user"
cp examples/hello_lethe.c "$tmp/user/"
(
    cd "$tmp/user"
    export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
    cc hello_lethe.c $(pkg-config --cflags --libs lethe) -o hello_lethe
    LD_LIBRARY_PATH="$prefix/lib" ./hello_lethe
) || fail "the example program did not build or run against the installed library"
# Into a file first: with pipefail, grep -q closing the pipe early can fail ldd (SIGPIPE).
ldd "$tmp/user/hello_lethe" > "$tmp/ldd.txt" 2>&1 || true
grep -q "liblethe.so.0" "$tmp/ldd.txt" || fail "the example is not linked to liblethe.so.0"

make -s abi-check

# An unwritable prefix: one clear line, a non-zero exit, nothing installed.
if make -s install PREFIX=/proc/lethe-prefix > "$tmp/bad.log" 2>&1; then
    fail "make install into /proc/lethe-prefix succeeded"
fi
grep -q "is not writable" "$tmp/bad.log" || { cat "$tmp/bad.log"; fail "no clear error for an unwritable prefix"; }

make -s uninstall PREFIX="$prefix"
left=$(find "$prefix" -type f -o -type l | wc -l)
[ "$left" -eq 0 ] || { find "$prefix" -type f -o -type l; fail "make uninstall left $left files"; }
echo "install-check: installed, built and ran examples/hello_lethe.c with pkg-config, ABI as listed, unwritable prefix refused, uninstalled cleanly"
