#!/usr/bin/env bash
# Installs the pinned container stack vrid is tested against into a private
# prefix ($VRID_STACK, default /opt/vrid-stack): containerd, ctr,
# containerd-shim-runc-v2, runc, crictl and CRIU, all in $VRID_STACK/bin.
# Runs as root, needs no stdin, and is idempotent: a component that is already
# there at the pinned version is only re-checked.
set -euo pipefail

VRID_STACK=${VRID_STACK:-/opt/vrid-stack}
BIN=$VRID_STACK/bin
CONTAINERD_VERSION=v2.4.2
RUNC_VERSION=v1.5.2
CRICTL_VERSIONS="v1.34.0 v1.37.0" # first one that builds wins
# CRIU 4.1 cannot dump TCP sockets on kernels 6.16 and later (CRIU issue
# 2705); 4.2 can.  Debian sid has it, unpacked into a private prefix.
CRIU_MIN=4.2
CRIU_SUITE=sid

# Go downloads and build cache live under the prefix too, so nothing of the
# stack ends up elsewhere; GOTOOLCHAIN=local: never fetch another Go.
export PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export GOPATH=$VRID_STACK/go GOMODCACHE=$VRID_STACK/go/pkg/mod GOCACHE=$VRID_STACK/go/cache
export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false DEBIAN_FRONTEND=noninteractive
mkdir -p "$BIN" "$VRID_STACK/tmp"

log() { echo "== $*" >&2; }

# apt-get install, refreshing the package lists only when the first try fails.
apt_install() {
	local a=(apt-get -q -o DPkg::Lock::Timeout=300)
	"${a[@]}" install -y "$@" || { "${a[@]}" update && "${a[@]}" install -y "$@"; }
}

# go_install VERSION-LDFLAGS TAGS PKG...: builds into a temp dir and moves the
# binaries into $BIN, so a half-built binary never sits under its real name.
go_install() {
	local ldflags=$1 tags=$2 tmp
	shift 2
	tmp=$(mktemp -d "$VRID_STACK/tmp/gobin.XXXXXX")
	# (Explicit checks: callers use `go_install ... && return`, where set -e is off.)
	GOBIN=$tmp go install -trimpath -tags "$tags" -ldflags "-s -w $ldflags" "$@" || { rm -rf "$tmp"; return 1; }
	mv -f "$tmp"/* "$BIN"/ || return 1
	rmdir "$tmp"
}

# has_version BINARY VERSION-FLAG PATTERN: true if the binary exists and its
# version output contains PATTERN.
# (No `| grep -q`: with pipefail an early grep exit can fail the pipeline.)
has_version() {
	local out
	[[ -x $1 ]] && out=$("$1" "$2" 2>&1) && [[ $out == *"$3"* ]]
}

install_containerd() {
	local v=$CONTAINERD_VERSION
	if has_version "$BIN/containerd" --version " $v " &&
		has_version "$BIN/ctr" --version " $v" &&
		has_version "$BIN/containerd-shim-runc-v2" -v "$v"; then
		return
	fi
	log "building containerd $v (takes a few minutes)"
	# Without the -X flag the binaries report "2.4.2+unknown".
	go_install "-X github.com/containerd/containerd/v2/version.Version=$v" "" \
		"github.com/containerd/containerd/v2/cmd/containerd@$v" \
		"github.com/containerd/containerd/v2/cmd/ctr@$v" \
		"github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2@$v"
}

install_runc() {
	local v=$RUNC_VERSION
	if has_version "$BIN/runc" --version "runc version ${v#v}"; then
		return
	fi
	pkg-config --exists libseccomp 2>/dev/null || apt_install libseccomp-dev pkg-config
	log "building runc $v"
	# The seccomp tag links libseccomp through cgo; no libpathrs (Rust) tag,
	# so runc uses its pure-Go pathrs-lite.
	CGO_ENABLED=1 go_install "" "seccomp urfave_cli_no_docs" "github.com/opencontainers/runc@$v"
}

install_crictl() {
	local v
	for v in $CRICTL_VERSIONS; do
		has_version "$BIN/crictl" --version "$v" && return
	done
	for v in $CRICTL_VERSIONS; do
		log "building crictl $v"
		go_install "-X sigs.k8s.io/cri-tools/pkg/version.Version=$v" "" \
			"sigs.k8s.io/cri-tools/cmd/crictl@$v" && return
	done
	return 1
}

install_iptables() {
	command -v iptables >/dev/null || apt_install iptables
}

# The Debian packages whose programs the tests run in chains: strace,
# nginx with curl, busybox, whose own ps and top read /proc their way;
# redis (also snapshotted and restored), PostgreSQL 15 with pgbench, and
# ab, for the application tests and bench/apps.sh.  No service may start
# on install: unless a policy-rc.d already decides, one that forbids it
# stands for the install.
install_test_apps() {
	local pkgs=() cmd_pkg added='' rc=0
	for cmd_pkg in strace:strace nginx:nginx-light curl:curl busybox:busybox \
		redis-server:redis-server redis-cli:redis-tools ab:apache2-utils \
		/usr/lib/postgresql/15/bin/postgres:postgresql-15 \
		/usr/lib/postgresql/15/bin/pgbench:postgresql-contrib; do
		command -v "${cmd_pkg%%:*}" >/dev/null || pkgs+=("${cmd_pkg#*:}")
	done
	((${#pkgs[@]})) || return 0
	if [[ ! -e /usr/sbin/policy-rc.d ]]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 0755 /usr/sbin/policy-rc.d
		added=1
	fi
	apt_install "${pkgs[@]}" || rc=$?
	[[ -z $added ]] || rm -f /usr/sbin/policy-rc.d
	return "$rc"
}

# criu_ok CRIU: at least $CRIU_MIN, and `criu check` passes.
criu_ok() {
	local out v
	[[ -x $1 ]] && out=$("$1" --version 2>&1) || return 1
	v=$(awk '/^Version:/{print $2}' <<<"$out")
	[[ -n $v && $(printf '%s\n%s\n' "$CRIU_MIN" "$v" | sort -V | head -1) == "$CRIU_MIN" ]] &&
		"$1" check >/dev/null 2>&1
}

# CRIU >= $CRIU_MIN: a system one if it works, else Debian $CRIU_SUITE's package and the
# libraries it needs, unpacked under $VRID_STACK/criu-root and run with its own
# dynamic loader (Debian 12's CRIU 3.17 fails `criu check` on new kernels,
# trixie's 4.1 cannot dump TCP sockets on this one).
install_criu() {
	local sys
	grep -qs "^export CRIU_FAULT" "$BIN/criu" && criu_ok "$BIN/criu" && return
	sys=$(PATH=${PATH//$BIN/} command -v criu || true)
	if [[ -n $sys ]] && criu_ok "$sys"; then
		write_criu_wrapper "system CRIU" "$sys"
		criu_selftest
		return
	fi
	log "fetching CRIU from Debian $CRIU_SUITE"
	# Private apt configuration: own sources list, state and cache; the system's
	# /etc/apt sources are neither used nor changed.
	local A=$VRID_STACK/apt
	mkdir -p "$A/state/lists/partial" "$A/cache/archives/partial" "$A/debs"
	echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $CRIU_SUITE main" \
		>"$A/sources.list"
	local opts=(-q -o APT::Sandbox::User=root -o Dir::Etc::sourcelist="$A/sources.list" -o Dir::Etc::sourceparts=-
		-o Dir::State="$A/state" -o Dir::State::status=/var/lib/dpkg/status -o Dir::Cache="$A/cache")
	apt-get "${opts[@]}" update
	# criu plus every library package it depends on, from the package metadata
	# (ldd below checks that this really covers every shared library).
	local pkgs
	pkgs=$(apt-cache "${opts[@]}" depends --recurse --no-recommends --no-suggests --no-conflicts \
		--no-breaks --no-replaces --no-enhances criu | grep -E '^(criu|lib[^ ]*|gcc-[0-9]+-base)$' | sort -u)
	(cd "$A/debs" && rm -f ./*.deb && apt-get "${opts[@]}" download $pkgs)

	# Unpack into a fresh tree, then swap it in.
	local root=$VRID_STACK/criu-root tmproot deb
	tmproot=$(mktemp -d "$VRID_STACK/tmp/criu-root.XXXXXX")
	for deb in "$A"/debs/*.deb; do dpkg-deb -x "$deb" "$tmproot"; done
	rm -rf "$root.old"
	[[ -e $root ]] && mv "$root" "$root.old"
	mv "$tmproot" "$root"
	rm -rf "$root.old"
	chmod 755 "$root"

	# sid is merged-/usr: the loader and libraries sit under usr/lib*.
	local ld='' libpath f
	for f in "$root"/{usr/lib/x86_64-linux-gnu,lib/x86_64-linux-gnu,usr/lib64,lib64}/ld-linux-x86-64.so.2; do
		[[ -e $f ]] && { ld=$f; break; }
	done
	[[ -n $ld ]] || { echo "no dynamic loader in $root" >&2; return 1; }
	libpath=$root/usr/lib/x86_64-linux-gnu:$root/lib/x86_64-linux-gnu
	if "$ld" --library-path "$libpath" --list "$root/usr/sbin/criu" | grep 'not found'; then
		echo "CRIU still misses shared libraries (above)" >&2
		return 1
	fi
	# --library-path, not LD_LIBRARY_PATH: the programs CRIU runs (iptables,
	# ip, ...) must keep using the system libraries.
	write_criu_wrapper "CRIU from Debian $CRIU_SUITE, run with its own loader and libraries" \
		"$ld --library-path $libpath $root/usr/sbin/criu"
	"$BIN/criu" --version
	"$BIN/criu" check
	criu_selftest
}

# write_criu_wrapper COMMENT COMMAND: $BIN/criu runs COMMAND with CRIU_FAULT=130
# (FI_NO_BREAKPOINTS). Hardware breakpoints do not fire in this kind of VM
# (Firecracker), so CRIU's default way of catching the parasite's sigreturn
# lets the dumped task run away ("Task ... is in unexpected state: 0");
# with 130 CRIU steps through syscalls instead, which works everywhere.
write_criu_wrapper() {
	cat >"$BIN/criu.tmp" <<EOF
#!/bin/sh
# $1
export CRIU_FAULT=\${CRIU_FAULT:-130}
exec $2 "\$@"
EOF
	chmod 755 "$BIN/criu.tmp"
	mv -f "$BIN/criu.tmp" "$BIN/criu"
}

# Dump and restore a sleeping process with the installed CRIU.
criu_selftest() {
	local dir pid comm rc=0
	dir=$(mktemp -d "$VRID_STACK/tmp/criu-test.XXXXXX")
	setsid sleep 100 </dev/null &>/dev/null &
	pid=$!
	# The dump kills the task; reap it before its pid is restored. stderr is
	# off here only to hide bash's "Killed" notice (CRIU logs to dump.log).
	{
		"$BIN/criu" dump -t "$pid" -D "$dir" --shell-job -o dump.log || { rc=$?; kill "$pid"; }
		wait "$pid" || true
	} 2>/dev/null
	((rc == 0)) || { tail -20 "$dir/dump.log" >&2; return 1; }
	"$BIN/criu" restore -D "$dir" -d --shell-job -o restore.log ||
		{ tail -20 "$dir/restore.log" >&2; return 1; }
	comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
	kill "$pid" 2>/dev/null || true
	rm -rf "$dir"
	[[ $comm == sleep ]] || { echo "CRIU restore did not bring back pid $pid" >&2; return 1; }
	log "CRIU dump/restore of pid $pid works"
}

# vrid's own Go binaries build the table engine through cgo, as runc does.
command -v gcc >/dev/null || apt_install gcc libc6-dev
install_containerd
install_runc
install_crictl
install_iptables
install_criu
install_test_apps
rm -rf "$VRID_STACK/tmp"/*

# One line per component: name, version, path.
printf '%-26s %-10s %s\n' \
	containerd "$("$BIN/containerd" --version | awk '{print $3}')" "$BIN/containerd" \
	ctr "$("$BIN/ctr" --version | awk '{print $3}')" "$BIN/ctr" \
	containerd-shim-runc-v2 "$("$BIN/containerd-shim-runc-v2" -v | awk '/Version:/{print $2}')" "$BIN/containerd-shim-runc-v2" \
	runc "$("$BIN/runc" --version | awk 'NR==1{print $3}')" "$BIN/runc" \
	crictl "$("$BIN/crictl" --version | awk '{print $3}')" "$BIN/crictl" \
	criu "$("$BIN/criu" --version | awk '/^Version:/{print $2}')" "$BIN/criu" \
	iptables "$(iptables --version | awk '{print $2}')" "$(command -v iptables)"
