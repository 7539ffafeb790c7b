#!/usr/bin/env bash
# Builds OCI image tarballs for the tests, without docker or a registry.
#
#   build.sh OUTDIR NAME:TAG FILE...
#     Image localhost/vrid/NAME:TAG in OUTDIR/NAME_TAG.tar holding each FILE
#     at its own absolute path (or SRC=DEST to put SRC at DEST), every shared
#     library they need (ldd) plus the dynamic loader, /bin/sh and the other
#     applets of busybox (static; dash and its libraries if there is no
#     busybox), and /tmp /proc /dev /sys /etc /run. Default command /bin/sh.
#   build.sh --pause OUTDIR
#     Image localhost/vrid/pause:test in OUTDIR/pause_test.tar: only /pause,
#     built from pause/pause.c with gcc -static, as entrypoint.
#
# Import with: ctr -a SOCK -n NS images import --all-platforms FILE.tar
# Prints "TARFILE IMAGE-NAME MANIFEST-DIGEST".
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export PATH=$PATH:/usr/local/go/bin DEBIAN_FRONTEND=noninteractive

usage() { sed -n '2,15p' "$0" >&2; exit 2; }
[[ $# -ge 2 ]] || usage
PAUSE=
if [[ $1 == --pause ]]; then
	PAUSE=1 OUT=$2 NAME=pause TAG=test
else
	[[ $# -ge 3 && $2 == *:* ]] || usage
	OUT=$1 NAME=${2%%:*} TAG=${2#*:}
	shift 2
fi
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d "$OUT/.build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
ROOT=$WORK/rootfs
mkdir -p "$ROOT"/{proc,dev,sys,etc,run} && install -d -m 1777 "$ROOT/tmp"
printf 'root:x:0:0:root:/:/bin/sh\n' >"$ROOT/etc/passwd"
printf 'root:x:0:\n' >"$ROOT/etc/group"

# put SRC DEST: copy a file into the rootfs (following symlinks).
put() {
	mkdir -p "$ROOT$(dirname "$2")"
	cp -L "$1" "$ROOT$2"
}

# add_libs FILE: the shared libraries FILE needs and the loader, at the paths
# ldd reports (which are the paths the loader looks at).
add_libs() {
	local lib
	# ldd fails on static binaries; then there is nothing to add.
	for lib in $(ldd "$1" 2>/dev/null | grep -oE '/[^ ]+ \(0x' | cut -d' ' -f1 || true); do
		[[ -e $ROOT$lib ]] || put "$lib" "$lib"
	done
	if ldd "$1" 2>/dev/null | grep -q 'not found'; then
		echo "$1: missing libraries:" >&2
		ldd "$1" | grep 'not found' >&2
		exit 1
	fi
}

ENTRYPOINT= CMD=/bin/sh
if [[ -n $PAUSE ]]; then
	gcc -static -O2 -Wall -Werror -o "$ROOT/pause" "$HERE/pause/pause.c"
	rm -rf "${ROOT:?}"/{etc,run}
	ENTRYPOINT=/pause CMD=
else
	for f in "$@"; do
		src=${f%%=*} dst=${f#*=}
		[[ $f == *=* ]] || dst=$(realpath "$src")
		put "$src" "$dst"
		add_libs "$src"
	done
	# /bin/sh: busybox-static, with a link for each applet not already there.
	if [[ ! -x /bin/busybox ]]; then
		apt-get install -y -q busybox-static >&2 || { apt-get update -q >&2 && apt-get install -y -q busybox-static >&2; } || true
	fi
	if [[ -x /bin/busybox ]] && ! ldd /bin/busybox >/dev/null 2>&1; then
		put /bin/busybox /bin/busybox
		for a in $(/bin/busybox --list); do
			[[ -e $ROOT/bin/$a ]] || ln -s busybox "$ROOT/bin/$a"
		done
	else
		put /bin/dash /bin/sh
		add_libs /bin/dash
	fi
fi

(cd "$HERE" && go build -buildvcs=false -o "$WORK/ociimage" .)
"$WORK/ociimage" -rootfs "$ROOT" -ref "localhost/vrid/$NAME:$TAG" -out "$OUT/${NAME}_$TAG.tar" \
	-entrypoint "$ENTRYPOINT" -cmd "$CMD"
