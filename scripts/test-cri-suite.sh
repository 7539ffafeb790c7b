#!/usr/bin/env bash
# critest, the CRI validation suite of cri-tools (v1.34.0, the stack's
# crictl version), run offline against the test containerd
# (scripts/test-containerd.sh) three times, and the totals side by side:
#
#   test-cri-suite.sh [RUN...]
#
# RUN is runc (handler runc), vrid-system (handler vrid, [tables] ids =
# "system") or vrid-sequential (ids = "sequential"); default all three.
# The goal is that every spec passing under runc passes under vrid; the
# script lists those that do not and exits 1 when there are any.
#
# Private mount, network and IPC namespaces hold the run: pod networking is
# a CNI bridge (Debian's containernetworking-plugins) in that network
# namespace, with its own ip_forward and nat rules, and /var/lib/cni is a
# tmpfs there; all of it is also torn down explicitly after each run, with
# the SysV objects that critest's HostIpc spec makes (ipcmk).
#
# Images: stand-ins under the exact names critest pulls, served by Debian's
# docker-registry on 127.0.0.1:5000 as a mirror of registry.k8s.io and
# gcr.io (hosts.toml under the test containerd's certs.d). They hold
# Debian's dynamically linked busybox, so the preload layer is in every
# process, and Debian's nginx for the nginx and httpd images. Skipped:
# the Image Manager specs that pull public images by digest or list them
# (image status, listImage, public image with/without tag), and
# benchmarks. Logs and JUnit reports stay in _output/cri-suite/.
#
# Environment: VRID_STACK (/opt/vrid-stack), VRID_SUITE_FOCUS (a
# --ginkgo.focus pattern, to run a few specs).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/suite-lib.sh"

VERSION=v1.34.0
OUT=$REPO/_output/cri-suite
WORK=${VRID_SUITE_WORK:-/var/tmp/vrid-cri-suite}
CTRD=$WORK/ctrd
SKIP='image status|listImage|public image with|public image without'
SEED=1
BRIDGE=vridcni0
SUBNET=10.88.77.0/24
RUNS=("$@")
((${#RUNS[@]})) || RUNS=(runc vrid-system vrid-sequential)

build() {
	log "building critest $VERSION"
	suite_source "sigs.k8s.io/cri-tools@$VERSION" "$WORK/cri-tools"
	(cd "$WORK/cri-tools" && suite_go test -c -o "$WORK/critest" ./cmd/critest)
}

# nginx_image TAG PORT: Debian's nginx, master and two workers, serving
# /var/www/html on PORT; the pid file at /var/run/nginx.pid.
nginx_image() {
	local r=$WORK/rootfs/nginx-$2
	busybox_rootfs "$r"
	cp "$WORK/nginx/usr/sbin/nginx" "$r/bin/nginx"
	put_libs "$r" "$r/bin/nginx"
	mkdir -p "$r"/{etc/nginx,var/log/nginx,var/lib/nginx,var/www/html}
	echo '<html><body>vrid critest stand-in</body></html>' >"$r/var/www/html/index.html"
	cat >"$r/etc/nginx/nginx.conf" <<EOF
user www-data;
worker_processes 2;
pid /run/nginx.pid;
error_log stderr;
events { worker_connections 64; }
http {
	access_log off;
	server { listen $2; root /var/www/html; index index.html; }
}
EOF
	image_build "$WORK/oci" "$1" --config.entrypoint nginx --config.cmd -g --config.cmd 'daemon off;' -- "$r"
}

# images: OCI layouts of the stand-ins, and the pause image the test
# containerd pins.
images() {
	local r=$WORK/rootfs
	log "building critest's images"
	busybox_rootfs "$r/busybox"
	# What specs run that Debian's busybox lacks: procps' pgrep and
	# util-linux's ipcs (both read /proc, through the preload layer).
	put_with_libs "$r/busybox" /usr/bin/pgrep /usr/bin/ipcs
	image_build "$WORK/oci" busybox --config.cmd sh -- "$r/busybox"
	# httpd: busybox's, announcing itself on stdout as the real image's
	# log does (a spec looks for "httpd" in it).
	cp -a "$r/busybox" "$r/httpd"
	mkdir -p "$r/httpd/var/www"
	echo '<html><body>vrid critest stand-in</body></html>' >"$r/httpd/var/www/index.html"
	image_build "$WORK/oci" httpd --config.entrypoint sh --config.entrypoint -c \
		--config.entrypoint 'echo "httpd: serving /var/www on port 80"; exec httpd -f -p 80 -h /var/www' -- "$r/httpd"
	# User default-user (1000) in group-defined-in-image (50000), USER 1000.
	cp -a "$r/busybox" "$r/group"
	echo 'default-user:x:1000:1000::/home/default-user:/bin/sh' >>"$r/group/etc/passwd"
	printf '%s\n' 'default-user:x:1000:' 'group-defined-in-image:x:50000:default-user' >>"$r/group/etc/group"
	image_build "$WORK/oci" group --config.cmd sh --config.user 1000 -- "$r/group"
	# A setuid-root program that prints its effective uid.
	cp -a "$r/busybox" "$r/nonewprivs"
	mkdir -p "$r/nonewprivs/usr/local/bin"
	gcc -O2 -Wall -Werror -o "$r/nonewprivs/usr/local/bin/nonewprivs" "$REPO/test/suites/nonewprivs.c"
	chmod 4755 "$r/nonewprivs/usr/local/bin/nonewprivs"
	image_build "$WORK/oci" nonewprivs --config.cmd /usr/local/bin/nonewprivs -- "$r/nonewprivs"
	deb_unpack "$WORK/nginx" nginx
	nginx_image nginx 80
	nginx_image hostnet-nginx 12003
	"$REPO/test/ociimage/build.sh" --pause "$WORK/pause" >/dev/null
}

# push_images: each stand-in under the path critest names, on the mirror.
push_images() {
	image_push "$WORK/oci" busybox e2e-test-images/busybox:1.29-2
	image_push "$WORK/oci" nginx e2e-test-images/nginx:1.14-2
	image_push "$WORK/oci" httpd e2e-test-images/httpd:2.4.39-4
	image_push "$WORK/oci" nonewprivs e2e-test-images/nonewprivs:1.3
	image_push "$WORK/oci" hostnet-nginx k8s-staging-cri-tools/hostnet-nginx-amd64:latest
	image_push "$WORK/oci" group k8s-staging-cri-tools/test-image-predefined-group:latest
}

# mirrors: registry.k8s.io and gcr.io resolve to the local registry.
mirrors() {
	local host
	for host in registry.k8s.io gcr.io; do
		mkdir -p "$CTRD/certs.d/$host"
		cat >"$CTRD/certs.d/$host/hosts.toml" <<EOF
server = "https://$host"

[host."http://$REGISTRY"]
  capabilities = ["pull", "resolve"]
EOF
	done
}

# cni_up: the bridge network that test-containerd.sh's CRI reads from
# $CTRD/cni; state in a tmpfs over /var/lib/cni.
cni_up() {
	local p
	mkdir -p "$CTRD/cni/bin" "$CTRD/cni/net.d"
	for p in /usr/lib/cni/*; do ln -sfn "$p" "$CTRD/cni/bin/"; done
	cat >"$CTRD/cni/net.d/10-vrid-critest.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "vrid-critest",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$SUBNET"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
	mkdir -p /var/lib/cni
	mount -t tmpfs tmpfs /var/lib/cni
	echo 1 >/proc/sys/net/ipv4/ip_forward
}

# cni_down: what the bridge and portmap plugins and critest leave behind.
cni_down() {
	local c
	ip link del "$BRIDGE" 2>/dev/null || true
	for c in $(iptables -t nat -S | awk '$1 == "-N" && $2 ~ /^CNI-/ {print $2}'); do
		iptables -t nat -F "$c"
	done
	iptables -t nat -S | awk '$1 == "-A" && / -j CNI-/ {$1 = "-D"; print}' | while read -r rule; do
		eval iptables -t nat "$rule"
	done
	for c in $(iptables -t nat -S | awk '$1 == "-N" && $2 ~ /^CNI-/ {print $2}'); do
		iptables -t nat -X "$c"
	done
	echo 0 >/proc/sys/net/ipv4/ip_forward
	umount /var/lib/cni 2>/dev/null || true
	ipcrm --all 2>/dev/null || true
}

# run_one RUN: one critest run against a fresh test containerd.
run_one() {
	local run=$1 cfg="" handler=() status=0 env focus=${VRID_SUITE_FOCUS:-}
	rm -rf "$CTRD/root" "$CTRD/state" "$CTRD/vrid-state" "$CTRD/runc"
	case $run in
	runc) ;;
	vrid-system) handler=(--runtime-handler vrid) ;;
	vrid-sequential)
		handler=(--runtime-handler vrid)
		cfg=$WORK/vrid-sequential.toml
		cat >"$cfg" <<EOF
state_dir = '$CTRD/vrid-state'
log_level = 'warning'

[tables]
ids = 'sequential'

[runc]
binary = '$VRID_STACK/bin/runc'
root = '$CTRD/runc'
EOF
		;;
	*) echo "unknown run $run: use runc, vrid-system or vrid-sequential" >&2; return 2 ;;
	esac
	env=(VRID_CTRD_DIR="$CTRD" VRID_SHIM_DIR="$REPO/bin")
	[[ -n $cfg ]] && env+=(VRID_CONFIG_PATH="$cfg")
	cni_up
	env "${env[@]}" "$REPO/scripts/test-containerd.sh" start >&2
	"$VRID_STACK/bin/ctr" --address "$CTRD/containerd.sock" -n k8s.io images import --all-platforms \
		"$WORK/pause/pause_test.tar" >/dev/null
	log "critest, $run (log: $OUT/$run.log)"
	(cd "$WORK" && "$WORK/critest" --runtime-endpoint "unix://$CTRD/containerd.sock" \
		--image-endpoint "unix://$CTRD/containerd.sock" ${handler[@]+"${handler[@]}"} \
		--ginkgo.seed "$SEED" --ginkgo.skip "$SKIP" ${focus:+--ginkgo.focus "$focus"} \
		--ginkgo.junit-report "$OUT/$run.xml" >"$OUT/$run.log" 2>&1) || status=$?
	echo "$status" >"$OUT/$run.status"
	printf '%s' "$focus" >"$OUT/$run.focus"
	env "${env[@]}" "$REPO/scripts/test-containerd.sh" stop >&2
	stop_namespace_processes "$REGISTRY_PID"
	cni_down
}

inner() {
	local run
	ip link set lo up
	registry_start "$WORK/registry"
	push_images
	mirrors
	for run in "${RUNS[@]}"; do
		run_one "$run"
	done
	kill "$REGISTRY_PID"
	wait "$REGISTRY_PID" 2>/dev/null || true
	stop_namespace_processes
}

# junit_results XML STATUS: names of the specs with that status (passed,
# failed, skipped; errors and panics count as failed), sorted.
junit_results() {
	python3 - "$1" "$2" <<'EOF'
import sys, xml.etree.ElementTree as ET
path, want = sys.argv[1], sys.argv[2]
names = set()
for tc in ET.parse(path).getroot().iter("testcase"):
    status = tc.get("status", "")
    if tc.find("skipped") is not None or status == "skipped":
        got = "skipped"
    elif tc.find("failure") is not None or tc.find("error") is not None or status in ("failed", "panicked", "timedout", "interrupted", "aborted"):
        got = "failed"
    else:
        got = "passed"
    if got == want and tc.get("name", "").startswith("[It]"):
        names.add(tc.get("name"))
print("\n".join(sorted(names)))
EOF
}

count() { [[ -z $1 ]] && echo 0 || wc -l <<<"$1"; }

report() {
	local run first=${RUNS[0]} p f s st regress=0
	echo
	printf '%-18s %7s %7s %7s  %s\n' run passed failed skipped "exit status"
	for run in "${RUNS[@]}"; do
		if [[ ! -s $OUT/$run.xml ]]; then
			printf '%-18s %s\n' "$run" "no report (see $OUT/$run.log)"
			continue
		fi
		p=$(count "$(junit_results "$OUT/$run.xml" passed)")
		f=$(count "$(junit_results "$OUT/$run.xml" failed)")
		s=$(count "$(junit_results "$OUT/$run.xml" skipped)")
		st=$(cat "$OUT/$run.status" 2>/dev/null || echo "not run")
		printf '%-18s %7s %7s %7s  %s\n' "$run" "$p" "$f" "$s" "$st"
	done
	[[ -s $OUT/$first.xml ]] || return 1
	for run in "${RUNS[@]:1}"; do
		[[ -s $OUT/$run.xml ]] || { regress=1; continue; }
		list_regressions "$first" "$run" "$(junit_results "$OUT/$first.xml" passed)" \
			"$(junit_results "$OUT/$run.xml" failed)" "$OUT/regressions-$run.txt" || regress=1
		if [[ -s $OUT/$run.focus ]]; then
			echo "($run ran only the specs matching $(cat "$OUT/$run.focus"))"
		else
			echo "passing under $first, skipped under $run:"
			comm -12 <(junit_results "$OUT/$first.xml" passed) <(junit_results "$OUT/$run.xml" skipped) |
				sed '/^$/d; s/^/  /'
		fi
	done
	return $regress
}

main() {
	suite_prepare test-cri-suite docker-registry skopeo umoci jq curl iproute2 iptables util-linux procps \
		busybox gcc containernetworking-plugins
	build
	images
	# /var/lib/cni is a tmpfs in the namespace; its mount point stays only
	# if it was there before.
	local made_cni="" cgroups
	[[ -d /var/lib/cni ]] || made_cni=1
	cgroups=$(cgroups_list)
	suite_unshare --inner "${RUNS[@]}" || echo "test-cri-suite: the run in private namespaces failed" >&2
	cgroups_remove_new "$cgroups"
	[[ -z $made_cni ]] || rmdir /var/lib/cni 2>/dev/null || true
	report
}

if [[ ${1:-} == --inner ]]; then
	shift
	RUNS=("$@")
	inner
else
	main
fi
