#!/usr/bin/env bash
# containerd's own client suite (integration/client at the stack's v2.4.2)
# run offline against both runtimes, and the totals side by side:
#
#   test-containerd-suite.sh [RUNTIME...]
#
# RUNTIME defaults to io.containerd.runc.v2 then io.containerd.vrid.v1 (the
# vrid shim, vrid-hook and libvrid.so of this work tree). The goal is that
# every test passing under runc.v2 passes under vrid.v1; the script lists
# those that do not and exits 1 when there are any.
#
# The suite starts its own containerd at fixed paths (/run/containerd-test,
# /var/lib/containerd-test) and the shims use /run/containerd. So the run
# happens in private mount, network and IPC namespaces, with private
# directories over /run and /var/lib: a system containerd is never touched,
# and the suite's images come from a docker-registry on 127.0.0.1:5000 of
# that network namespace. Everything started there is stopped by pid, and
# the work directory is removed; logs stay in _output/containerd-suite/.
#
# Substitute images, built from Debian's dynamically linked busybox (and
# bash and passwd for the user-namespace image), as image indexes for
# linux/amd64, arm64 and ppc64le where the suite needs several platforms.
# Skipped: TestImagePullSomePlatforms and TestImagePullWithDistSourceLabel
# name registry.k8s.io images; TestBindLowPortNonOpt stops `nc -l` with
# SIGTERM, which Debian's busybox nc leaves to the default action, and the
# kernel ignores that for the pid 1 of a pid namespace: it would wait for
# the suite's timeout.
#
# Environment: VRID_STACK (/opt/vrid-stack), VRID_SUITE_TIMEOUT (40m, for
# each runtime), VRID_SUITE_RUN (a -test.run pattern, to run a few tests).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/suite-lib.sh"

VERSION=v2.4.2
OUT=$REPO/_output/containerd-suite
WORK=${VRID_SUITE_WORK:-/var/tmp/vrid-containerd-suite}
TIMEOUT=${VRID_SUITE_TIMEOUT:-40m}
SKIP='^(TestImagePullSomePlatforms|TestImagePullWithDistSourceLabel|TestBindLowPortNonOpt)$'
RUNTIMES=("$@")
((${#RUNTIMES[@]})) || RUNTIMES=(io.containerd.runc.v2 io.containerd.vrid.v1)

# build: the suite's test binary and its failpoint runc and shim, from a
# copy of the module's source with one patch: integration/images reads its
# image list before flag.Parse, so -image-list cannot reach it; the copy
# also takes the file from $VRID_SUITE_IMAGE_LIST.
build() {
	local src=$WORK/containerd
	suite_source "github.com/containerd/containerd/v2@$VERSION" "$src"
	sed -i 's|^\tif imageListFile != "" {|\tif imageListFile == "" {\n\t\timageListFile = os.Getenv("VRID_SUITE_IMAGE_LIST")\n\t}\n&|' \
		"$src/integration/images/image_list.go"
	grep -q VRID_SUITE_IMAGE_LIST "$src/integration/images/image_list.go" ||
		{ echo "patching integration/images/image_list.go failed" >&2; return 1; }
	log "building containerd's integration/client suite $VERSION"
	(cd "$src" && suite_go test -c -o "$WORK/client.test" ./integration/client &&
		suite_go build -o "$WORK/bin/" ./integration/failpoint/cmd/runc-fp ./integration/failpoint/cmd/containerd-shim-runc-fp-v1)
}

# images: OCI layouts of the substitute images.
images() {
	local r=$WORK/rootfs
	log "building the suite's images"
	busybox_rootfs "$r/busybox"
	image_build "$WORK/oci" busybox --config.cmd sh -- "$r/busybox"
	image_multiplatform "$WORK/oci" busybox arm64 ppc64le
	# The other names: busybox too, but each its own content, since tests
	# delete an image and then expect its content and snapshots gone.
	for name in alpine pause resource-consumer args-escaped nginx; do
		cp -a "$r/busybox" "$r/$name"
		echo "$name" >"$r/$name/etc/vrid-suite-image"
		image_build "$WORK/oci" "$name" --config.cmd sh -- "$r/$name"
		image_multiplatform "$WORK/oci" "$name" arm64 ppc64le
	done
	# Two layers: the test of multi-layer export, import and id-mapped unpack.
	mkdir -p "$r/etc-layer/etc"
	cp -a "$r/busybox/etc/." "$r/etc-layer/etc/"
	rm -rf "$r/bin-layer" && cp -a "$r/busybox" "$r/bin-layer" && rm -rf "$r/bin-layer/etc"
	image_build "$WORK/oci" multilayer --config.cmd sh -- "$r/bin-layer" "$r/etc-layer"
	# User namespaces: bash, a setuid /usr/bin/passwd.
	cp -a "$r/busybox" "$r/userns"
	rm -f "$r/userns/usr/bin" "$r/userns/bin/bash" && mkdir "$r/userns/usr/bin" && ln -s /bin/busybox "$r/userns/usr/bin/env"
	put_with_libs "$r/userns" /bin/bash /usr/bin/passwd
	chmod u+s "$r/userns/usr/bin/passwd"
	image_build "$WORK/oci" userns --config.cmd sh -- "$r/userns"
}

# run_one RUNTIME: the suite against one runtime, in this (private)
# namespace, with fresh /run and /var/lib.
run_one() {
	local rt=$1 dir=$WORK/ns/$1 status=0 args=()
	mkdir -p "$dir"/{run,varlib,tmp}
	mount --bind "$dir/run" /run
	mount --bind "$dir/varlib" /var/lib
	# Not TMPDIR: the socket paths under t.TempDir() must stay short.
	mount --bind "$dir/tmp" /tmp
	cat >"$dir/vrid-config.toml" <<EOF
state_dir = '/run/vrid'
log_level = 'warning'
# TestContainerStartWithAbsRuntimePath runs a copy of the shim from a
# temporary directory: it finds these only here.
library = '$REPO/lib/libvrid.so'
hook = '$REPO/bin/vrid-hook'

[runc]
binary = '$VRID_STACK/bin/runc'
EOF
	args=(-test.root -test.v -test.timeout "$TIMEOUT" -test.skip "$SKIP")
	[[ -n ${VRID_SUITE_RUN:-} ]] && args+=(-test.run "$VRID_SUITE_RUN")
	log "containerd suite, TEST_RUNTIME=$rt (log: $OUT/$rt.log)"
	(cd "$WORK/containerd/integration/client" &&
		PATH=$REPO/bin:$WORK/bin:$VRID_STACK/bin:$PATH TEST_RUNTIME=$rt \
			VRID_CONFIG=$dir/vrid-config.toml VRID_SUITE_IMAGE_LIST=$WORK/images.toml \
			"$WORK/client.test" "${args[@]}" >"$OUT/$rt.log" 2>&1) || status=$?
	stop_namespace_processes "$REGISTRY_PID"
	umount -R /tmp
	umount -R /var/lib
	umount -R /run
	echo "$status" >"$OUT/$rt.status"
}

# inner: in the private namespaces. The registry, the images in it, then
# each runtime.
inner() {
	local rt digest name
	ip link set lo up
	registry_start "$WORK/registry"
	image_push "$WORK/oci" busybox containerd/busybox:1.36
	image_push "$WORK/oci" multilayer containerd/volume-copy-up:2.2
	image_push "$WORK/oci" userns containerd/volume-ownership:2.1
	for name in alpine:3.14.0 pause:3.10.2 resource-consumer:1.10 args-escaped:1.0 nginx:1.27.0; do
		image_push "$WORK/oci" "${name%%:*}" "containerd/$name"
	done
	digest=$(image_digest containerd/busybox:1.36)
	cat >"$WORK/images.toml" <<EOF
Alpine = "$REGISTRY/containerd/alpine:3.14.0"
BusyBox = "$REGISTRY/containerd/busybox:1.36"
BusyBoxByDigest = "$REGISTRY/containerd/busybox@$digest"
Pause = "$REGISTRY/containerd/pause:3.10.2"
ResourceConsumer = "$REGISTRY/containerd/resource-consumer:1.10"
VolumeCopyUp = "$REGISTRY/containerd/volume-copy-up:2.2"
VolumeOwnership = "$REGISTRY/containerd/volume-ownership:2.1"
ArgsEscaped = "$REGISTRY/containerd/args-escaped:1.0"
Nginx = "$REGISTRY/containerd/nginx:1.27.0"
EOF
	for rt in "${RUNTIMES[@]}"; do
		run_one "$rt"
	done
	kill "$REGISTRY_PID"
	wait "$REGISTRY_PID" 2>/dev/null || true
	stop_namespace_processes
}

report() {
	local rt first=${RUNTIMES[0]} p f s st regress=0
	echo
	printf '%-24s %7s %7s %7s  %s\n' runtime passed failed skipped "exit status"
	for rt in "${RUNTIMES[@]}"; do
		read -r p f s < <(go_test_totals "$OUT/$rt.log")
		st=$(cat "$OUT/$rt.status" 2>/dev/null || echo "not run")
		printf '%-24s %7s %7s %7s  %s\n' "$rt" "$p" "$f" "$s" "$st"
	done
	for rt in "${RUNTIMES[@]:1}"; do
		list_regressions "$first" "$rt" "$(go_test_results "$OUT/$first.log" PASS)" \
			"$(go_test_results "$OUT/$rt.log" FAIL)" "$OUT/regressions-$rt.txt" || regress=1
		echo "failing under both:"
		comm -12 <(go_test_results "$OUT/$first.log" FAIL) <(go_test_results "$OUT/$rt.log" FAIL) | sed 's/^/  /'
	done
	return $regress
}

main() {
	local cgroups
	suite_prepare test-containerd-suite docker-registry skopeo umoci jq curl iproute2 bash passwd busybox
	mkdir -p "$WORK/bin"
	build
	images
	# /var/lib/containerd-test and /run/containerd-test are created under
	# the private directories bound over /var/lib and /run.
	cgroups=$(cgroups_list)
	suite_unshare --inner "${RUNTIMES[@]}" || echo "test-containerd-suite: the run in private namespaces failed" >&2
	cgroups_remove_new "$cgroups"
	report
}

if [[ ${1:-} == --inner ]]; then
	shift
	RUNTIMES=("$@")
	inner
else
	main
fi
