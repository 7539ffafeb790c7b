# Shared by test-containerd-suite.sh and test-cri-suite.sh, which run the
# peers' own test suites (containerd's integration/client, cri-tools'
# critest) offline against vrid. Source it; it defines functions only,
# besides the variables below.
#
# The suites come from the Go module cache that scripts/install-stack.sh
# fills; their images are built here from Debian's files with umoci and
# served by Debian's docker-registry on 127.0.0.1:5000, inside a private
# network namespace that the calling script opens (so the port is ours).

VRID_STACK=${VRID_STACK:-/opt/vrid-stack}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REGISTRY=127.0.0.1:5000
export PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export DEBIAN_FRONTEND=noninteractive

log() { echo "== $*" >&2; }

# need_packages PKG...: apt-get install the packages that are not installed.
need_packages() {
	local p missing=() a=(apt-get -q -o DPkg::Lock::Timeout=300)
	for p in "$@"; do
		[[ $(dpkg-query -W -f '${Status}' "$p" 2>/dev/null) == "install ok installed" ]] || missing+=("$p")
	done
	((${#missing[@]})) || return 0
	log "installing ${missing[*]}"
	"${a[@]}" install -y --no-install-recommends "${missing[@]}" >&2 ||
		{ "${a[@]}" update >&2 && "${a[@]}" install -y --no-install-recommends "${missing[@]}" >&2; }
}

# deb_unpack DIR PKG...: the files of Debian packages, unpacked into DIR
# without installing them (their maintainer scripts would start services).
deb_unpack() {
	local dir=$1 debs
	shift
	debs=$(mktemp -d)
	chmod 777 "$debs" # apt-get download writes as _apt
	(cd "$debs" && apt-get -q download "$@" >&2) ||
		(cd "$debs" && apt-get -q update >&2 && apt-get -q download "$@" >&2)
	for d in "$debs"/*.deb; do dpkg-deb -x "$d" "$dir"; done
	rm -rf "$debs"
}

# suite_source MODULE@VERSION DIR: a writable copy of a module's source from
# the stack's module cache (which is read-only, and must stay unpatched).
suite_source() {
	local src=$VRID_STACK/go/pkg/mod/$1
	[[ -d $src ]] || { echo "no $src: run scripts/install-stack.sh" >&2; return 1; }
	rm -rf "$2"
	cp -r "$src" "$2"
	chmod -R u+w "$2"
}

# suite_go ARGS...: go with the stack's module cache and build cache; test
# dependencies missing from the cache come from the module proxy.
suite_go() {
	GOPATH=$VRID_STACK/go GOMODCACHE=$VRID_STACK/go/pkg/mod GOCACHE=$VRID_STACK/go/cache \
		GOTOOLCHAIN=local GOFLAGS="-buildvcs=false -mod=mod" go "$@"
}

# put_with_libs ROOT FILE...: copy each file to the same path under ROOT,
# with the libraries it needs (put_libs).
put_with_libs() {
	local root=$1 f
	shift
	for f in "$@"; do
		mkdir -p "$root$(dirname "$f")"
		cp -L --preserve=mode "$f" "$root$f"
		put_libs "$root" "$f"
	done
}

# put_libs ROOT FILE: the shared libraries and the loader FILE needs, at the
# paths ldd reports, under ROOT (so the preload layer is in every process
# of the image, unlike with static binaries).
put_libs() {
	local root=$1 lib
	for lib in $(ldd "$2" 2>/dev/null | grep -oE '/[^ ]+ \(0x' | cut -d' ' -f1 || true); do
		[[ -e $root$lib ]] && continue
		mkdir -p "$root$(dirname "$lib")"
		cp -L "$lib" "$root$lib"
	done
}

# busybox_rootfs ROOT: Debian's dynamically linked busybox with every applet,
# the users and groups that busybox images have (the suites use sys, 3:3,
# www-data, 33:33, and backup, 34), and the usual top-level directories.
busybox_rootfs() {
	local root=$1 a
	mkdir -p "$root"/{bin,etc,proc,sys,dev,run,root,var} && install -d -m 1777 "$root/tmp"
	ln -s ../run "$root/var/run"
	put_with_libs "$root" /usr/bin/busybox
	mv "$root/usr/bin/busybox" "$root/bin/busybox"
	rmdir "$root/usr/bin"
	# Hard links, as busybox images have: a masked /bin/ls must not mask
	# busybox itself.
	for a in $(/usr/bin/busybox --list); do
		[[ -e $root/bin/$a ]] || ln "$root/bin/busybox" "$root/bin/$a"
	done
	ln -s ../bin "$root/usr/bin" && ln -s bin "$root/sbin" && ln -s ../bin "$root/usr/sbin"
	printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'daemon:x:1:1:daemon:/usr/sbin:/bin/false' \
		'bin:x:2:2:bin:/bin:/bin/false' 'sys:x:3:3:sys:/dev:/bin/false' 'sync:x:4:65534:sync:/bin:/bin/sync' \
		'mail:x:8:8:mail:/var/mail:/bin/false' 'www-data:x:33:33:www-data:/var/www:/bin/false' \
		'backup:x:34:34:backup:/var/backups:/bin/false' 'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' \
		>"$root/etc/passwd"
	printf '%s\n' 'root:x:0:' 'daemon:x:1:' 'bin:x:2:' 'sys:x:3:' 'adm:x:4:' 'tty:x:5:' 'disk:x:6:' 'mail:x:8:' \
		'www-data:x:33:' 'backup:x:34:' 'users:x:100:' 'nogroup:x:65534:' >"$root/etc/group"
	echo 'hosts: files dns' >"$root/etc/nsswitch.conf"
}

# image_build LAYOUT TAG [CONFIG-ARG...] -- DIR...: an image in the OCI
# layout LAYOUT, one layer per DIR (each holding files at their paths in
# the image), configured by umoci config arguments.
image_build() {
	local layout=$1 tag=$2 conf=() dir
	shift 2
	while (($#)) && [[ $1 != -- ]]; do conf+=("$1"); shift; done
	shift
	[[ -d $layout ]] || umoci init --layout "$layout"
	umoci new --image "$layout:$tag"
	for dir in "$@"; do
		umoci insert --image "$layout:$tag" "$dir" /
	done
	umoci config --image "$layout:$tag" --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		${conf[@]+"${conf[@]}"}
}

# put_blob LAYOUT FILE: move FILE into the layout's blobs; prints its digest
# and size.
put_blob() {
	local d size
	d=$(sha256sum "$2" | cut -d' ' -f1)
	size=$(stat -c %s "$2")
	mv -f "$2" "$1/blobs/sha256/$d"
	echo "sha256:$d $size"
}

# image_multiplatform LAYOUT TAG ARCH...: turn the linux/amd64 image TAG into
# an image index that also lists an image for each ARCH, whose one layer
# holds only /etc/vrid-suite-platform: content that platform-matching tests
# fetch or miss, and never run.
image_multiplatform() {
	local layout=$1 tag=$2 arch mdesc mdigest entries idx isize
	shift 2
	mdesc=$(jq -c --arg t "$tag" '.manifests[] | select(.annotations."org.opencontainers.image.ref.name" == $t)' "$layout/index.json")
	mdigest=$(jq -r .digest <<<"$mdesc")
	entries=$(jq -c '. + {platform: {architecture: "amd64", os: "linux"}} | del(.annotations)' <<<"$mdesc")
	for arch in "$@"; do
		entries+=,$(platform_image "$layout" "$layout/blobs/sha256/${mdigest#sha256:}" "$tag" "$arch")
	done
	jq -n "{schemaVersion: 2, mediaType: \"application/vnd.oci.image.index.v1+json\", manifests: [$entries]}" >"$layout/i.tmp"
	read -r idx isize < <(put_blob "$layout" "$layout/i.tmp")
	jq --arg t "$tag" --arg i "$idx" --argjson s "$isize" '.manifests |= map(
		if .annotations."org.opencontainers.image.ref.name" == $t
		then {mediaType: "application/vnd.oci.image.index.v1+json", digest: $i, size: $s, annotations: .annotations}
		else . end)' "$layout/index.json" >"$layout/index.json.tmp"
	mv -f "$layout/index.json.tmp" "$layout/index.json"
}

# platform_image LAYOUT MANIFEST TAG ARCH: the image of ARCH for
# image_multiplatform, made from the amd64 manifest's config; prints its
# descriptor.
platform_image() {
	local layout=$1 mfile=$2 tag=$3 arch=$4 dir cdigest diff l lsize c csize m msize
	dir=$(mktemp -d)
	mkdir "$dir/etc"
	echo "$tag $arch" >"$dir/etc/vrid-suite-platform"
	tar -C "$dir" -cf "$layout/l.tar" etc
	rm -rf "$dir"
	diff=sha256:$(sha256sum <"$layout/l.tar" | cut -d' ' -f1)
	gzip -n "$layout/l.tar"
	read -r l lsize < <(put_blob "$layout" "$layout/l.tar.gz")
	cdigest=$(jq -r .config.digest "$mfile")
	jq --arg a "$arch" --arg d "$diff" '.architecture = $a | .rootfs.diff_ids = [$d] | del(.history)' \
		"$layout/blobs/sha256/${cdigest#sha256:}" >"$layout/c.tmp"
	read -r c csize < <(put_blob "$layout" "$layout/c.tmp")
	jq --arg c "$c" --argjson cs "$csize" --arg l "$l" --argjson ls "$lsize" '.config.digest = $c | .config.size = $cs |
		.layers = [{mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: $l, size: $ls}]' "$mfile" >"$layout/m.tmp"
	read -r m msize < <(put_blob "$layout" "$layout/m.tmp")
	jq -nc --arg m "$m" --argjson s "$msize" --arg a "$arch" \
		'{mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $m, size: $s, platform: {architecture: $a, os: "linux"}}'
}

# registry_start DIR: Debian's docker-registry on $REGISTRY, storing under
# DIR; sets REGISTRY_PID.
registry_start() {
	local dir=$1 i
	mkdir -p "$dir/data"
	cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $dir/data
http:
  addr: $REGISTRY
EOF
	docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 &
	REGISTRY_PID=$!
	for ((i = 0; i < 100; i++)); do
		curl -fsS "http://$REGISTRY/v2/" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "docker-registry did not come up:" >&2
	cat "$dir/registry.log" >&2
	return 1
}

# image_push LAYOUT TAG REPO:TAG: copy an image (every platform of an index)
# into the registry.
image_push() {
	skopeo copy -q --all --dest-tls-verify=false "oci:$1:$2" "docker://$REGISTRY/$3" >&2
}

# image_digest REPO:TAG: the digest the registry serves for a tag.
image_digest() {
	skopeo inspect --raw --tls-verify=false "docker://$REGISTRY/$1" | sha256sum | sed 's/ .*//; s/^/sha256:/'
}

# suite_unshare ARGS...: run this script again with ARGS in private mount,
# network, IPC and pid namespaces, as pid 1 of the latter, with its own
# /proc. Every process that the suites start there (containerd, shims,
# containers in their nested namespaces) ends with it at the latest.
suite_unshare() {
	unshare --mount --net --ipc --pid --fork --mount-proc --propagation private -- "$0" "$@"
}

# stop_namespace_processes [KEEP-PID...]: in suite_unshare's pid namespace,
# kill every process but this script (pid 1, to which orphans go), the
# calling shell and the given pids: what a suite left behind.
stop_namespace_processes() {
	local p pids=() keep=" 1 $$ $BASHPID $* "
	if [[ $$ != 1 ]]; then
		echo "stop_namespace_processes: not pid 1 of a private pid namespace" >&2
		return 1
	fi
	for p in /proc/[0-9]*; do
		p=${p#/proc/}
		[[ $keep == *" $p "* ]] || pids+=("$p")
	done
	((${#pids[@]})) || return 0
	log "stopping leftover processes ${pids[*]}"
	kill -KILL "${pids[@]}" 2>/dev/null || true
	sleep 1
}

# cgroups_list: every cgroup directory, for cgroups_remove_new.
cgroups_list() {
	find /sys/fs/cgroup -mindepth 2 -type d 2>/dev/null | sort
}

# cgroups_remove_new BEFORE: remove the empty cgroups that are not in the
# list BEFORE (cgroups_list from before the run), deepest first: what the
# suites' containers and daemons left.
cgroups_remove_new() {
	comm -13 <(echo "$1") <(cgroups_list) | awk '{print length($0), $0}' | sort -rn | cut -d' ' -f2- |
		while read -r d; do rmdir "$d" 2>/dev/null || true; done
}

# go_test_totals LOG: "passed failed skipped" of the top-level tests in a
# `go test -v` log.
go_test_totals() {
	printf '%s %s %s\n' "$(grep -c '^--- PASS: ' "$1")" "$(grep -c '^--- FAIL: ' "$1")" "$(grep -c '^--- SKIP: ' "$1")"
}

# go_test_results LOG STATUS: the names of the tests and subtests with that
# status (PASS, FAIL, SKIP), sorted.
go_test_results() {
	sed -nE "s/^ *--- $2: ([^ ]+) .*/\1/p" "$1" | sort -u
}

# suite_prepare NAME PACKAGE...: as root, the stack, the packages and vrid
# built; fresh $WORK and $OUT, and $WORK removed at exit.
suite_prepare() {
	local name=$1
	shift
	if [[ $(id -u) != 0 ]]; then
		echo "$name: run as root" >&2
		exit 1
	fi
	"$REPO/scripts/install-stack.sh"
	need_packages "$@"
	make -C "$REPO" all
	rm -rf "$WORK" "$OUT"
	mkdir -p "$WORK" "$OUT"
	trap 'rm -rf "$WORK"' EXIT
}

# list_regressions BASE RUN PASSED FAILED FILE: print, and keep in FILE,
# the names in both PASSED (under BASE) and FAILED (under RUN); false if
# there are any.
list_regressions() {
	echo
	echo "passing under $1, failing under $2:"
	comm -12 <(echo "$3") <(echo "$4") | sed '/^$/d; s/^/  /' | tee "$5"
	[[ ! -s $5 ]]
}
