package chain

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/vrid/vrid/vresource"
)

// TestIPCRefusal crosses the chain's credentials with the record it
// wrote and the object the kernel shows: an object goes only when the
// chain could remove it itself and it is the one the chain made.
func TestIPCRefusal(t *testing.T) {
	// The object now: shm 0x1234 of 1000:1000, made by pid 50 at 77.
	obj := ipcStat{Key: 0x1234, UID: 1000, CUID: 1000, CGID: 1000, CPID: 50, CTime: 77, Size: 4096}
	rec := vresource.IPCRecord{Type: vresource.Shm, Sys: 3, Key: 0x1234, CUID: 1000, CGID: 1000, CPID: 50, CTime: 77, Size: 4096}
	with := func(f func(*vresource.IPCRecord)) *vresource.IPCRecord {
		r := rec
		f(&r)
		return &r
	}
	user := vresource.Facts{UIDs: []uint32{1000}}
	root := vresource.Facts{UIDs: []uint32{0}, IPCAdmin: true}
	rootless := vresource.Facts{UIDs: []uint32{0}} // root in a user namespace: no power over this one
	userns := vresource.Facts{UIDs: []uint32{101000},
		UIDMap: []vresource.IDRange{{Inside: 0, Host: 100000, Size: 65536}},
		GIDMap: []vresource.IDRange{{Inside: 0, Host: 100000, Size: 65536}}}
	nsObj := obj
	nsObj.UID, nsObj.CUID, nsObj.CGID = 101000, 101000, 101000
	nsRec := with(func(r *vresource.IPCRecord) { r.CUID, r.CGID = 1000, 1000 })

	tests := []struct {
		name      string
		facts     vresource.Facts
		samePIDNS bool
		obj       ipcStat
		rec       *vresource.IPCRecord
		want      string // in the refusal; "" removes
	}{
		{"the chain's own", user, true, obj, &rec, ""},
		{"owned by another uid", vresource.Facts{UIDs: []uint32{2000}}, true, obj, &rec, "owned by uid 1000 and made by uid 1000, and the chain runs as [2000]"},
		{"no uids known", vresource.Facts{}, true, obj, &rec, "the chain runs as []"},
		{"made by the chain's uid, given away", user, true, ipcStat{Key: 0x1234, UID: 2000, CUID: 1000, CGID: 1000, CPID: 50, CTime: 77, Size: 4096}, &rec, ""},
		{"given to the chain's uid", user, true, ipcStat{Key: 0x1234, UID: 1000, CUID: 2000, CGID: 1000, CPID: 50, CTime: 77, Size: 4096},
			with(func(r *vresource.IPCRecord) { r.CUID = 2000 }), ""},
		{"root holds CAP_SYS_ADMIN", root, true, obj, &rec, ""},
		{"root without it", rootless, true, obj, &rec, "owned by uid 1000"},
		{"no record: forged", root, true, obj, nil, "no record of making it"},
		{"no record, private key", user, true, ipcStat{UID: 1000, CUID: 1000, CGID: 1000}, nil, "no record of making it"},
		{"forged record, other uid", vresource.Facts{UIDs: []uint32{2000}}, true, obj, &rec, "owned by uid 1000"},
		{"other key", user, true, obj, with(func(r *vresource.IPCRecord) { r.Key = 0 }), "its key is 0x1234, the chain made one with key 0x0"},
		{"other creator uid", root, true, obj, with(func(r *vresource.IPCRecord) { r.CUID = 2000 }), "made by 1000:1000, the chain's was made by 2000:1000"},
		{"other creator gid", root, true, obj, with(func(r *vresource.IPCRecord) { r.CGID = 2000 }), "made by 1000:1000, the chain's was made by 1000:2000"},
		{"other size", user, true, obj, with(func(r *vresource.IPCRecord) { r.Size = 8192 }), "its size is 4096, the chain's was 8192"},
		{"size unknown", user, true, obj, with(func(r *vresource.IPCRecord) { r.Size = 0 }), ""},
		{"other time", user, true, obj, with(func(r *vresource.IPCRecord) { r.CTime = 78 }), "changed at 77, the chain's at 78"},
		{"time unknown", user, true, obj, with(func(r *vresource.IPCRecord) { r.CTime = 0 }), ""},
		{"other creator pid", user, true, obj, with(func(r *vresource.IPCRecord) { r.CPID = 51 }), "made by pid 50, the chain's by pid 51"},
		{"other creator pid, seen from another pid namespace", user, false, obj, with(func(r *vresource.IPCRecord) { r.CPID = 1 }), ""},
		{"user namespace: ids mapped", userns, false, nsObj, nsRec, ""},
		{"user namespace: another inside uid", userns, false, nsObj, with(func(r *vresource.IPCRecord) { r.CUID = 1001 }), "made by 101000:101000, the chain's was made by 1001:1000"},
		{"user namespace: unmapped uid", userns, false, nsObj, with(func(r *vresource.IPCRecord) { r.CUID = 70000 }), "the chain's was made by 70000:1000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ipcSubject{facts: tt.facts, samePIDNS: tt.samePIDNS}.refusal(tt.obj, tt.rec)
			switch {
			case tt.want == "" && got != "":
				t.Errorf("left alone: %s", got)
			case tt.want != "" && !strings.Contains(got, tt.want):
				t.Errorf("refusal %q, want one saying %q", got, tt.want)
			}
		})
	}
}

// TestInIPCNamespace: only the namespace the host learned counts.
func TestInIPCNamespace(t *testing.T) {
	here, err := vresource.NamespaceOf("/proc/thread-self/ns/ipc")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		ns   vresource.NamespaceID
		ok   bool
		why  string
	}{
		{"this one", here, true, ""},
		{"unknown", vresource.NamespaceID{}, false, "the chain's IPC namespace is unknown"},
		{"another", vresource.NamespaceID{Dev: here.Dev, Ino: here.Ino + 1}, false, "the chain's is " + vresource.NamespaceID{Dev: here.Dev, Ino: here.Ino + 1}.String()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, why := InIPCNamespace(vresource.Facts{IPCNS: tt.ns})
			if ok != tt.ok || !strings.Contains(why, tt.why) {
				t.Errorf("InIPCNamespace: %v %q, want %v %q", ok, why, tt.ok, tt.why)
			}
		})
	}
}

// TestSelfFacts: a chain of root in the initial user namespace may
// remove any object of its IPC namespace; its uid is 0.
func TestSelfFacts(t *testing.T) {
	uidMap, err := os.ReadFile("/proc/self/uid_map")
	if os.Geteuid() != 0 || err != nil || strings.Join(strings.Fields(string(uidMap)), " ") != "0 0 4294967295" {
		t.Skip("needs root in the initial user namespace")
	}
	f, err := SelfFacts()
	if err != nil {
		t.Fatal(err)
	}
	ipc, _ := vresource.NamespaceOf("/proc/self/ns/ipc")
	pid, _ := vresource.NamespaceOf("/proc/self/ns/pid")
	if f.IPCNS != ipc || f.PIDNS != pid || !slices.Equal(f.UIDs, []uint32{0}) || !f.IPCAdmin {
		t.Errorf("facts %+v, want ipc %s, pid %s, uids [0], IPC admin", f, ipc, pid)
	}
}
