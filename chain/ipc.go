package chain

import (
	"errors"
	"fmt"
	"runtime"
	"slices"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/vrid/vrid/sysv"
	"github.com/vrid/vrid/vresource"
)

// Teardown removes a chain's System V objects with no more power than the
// chain had: the table and the records in it are the chain's own claims,
// and what decides is the kernel's word and the chain's Facts.
//
//  1. Credentials: an object goes only if the chain could have removed it
//     itself.  IPC_RMID takes the owner's or the creator's euid, or
//     CAP_SYS_ADMIN over the namespace: so the object's uid or cuid, as
//     IPC_STAT gives it, is one of Facts.UIDs, or Facts.IPCAdmin holds.
//  2. Identity: it is the object the chain made.  The layer recorded its
//     key, creator and size when its id entered the table (struct
//     vrid_ipc_record); an object whose id now names something else is
//     left.  Records are claims too: they catch ids reused without
//     malice, and rule 1 stops forgery.
//  3. Namespace: teardown runs only in the chain's IPC namespace,
//     Facts.IPCNS, which the host learned from the kernel (InIPCNamespace).
//
// Key 0 (IPC_PRIVATE) is no pass: private objects meet the same rules.

// ipcStat is what IPC_STAT says of an object now, in host ids.
type ipcStat = sysv.Stat

// ipcSubject is the chain as teardown judges it.
type ipcSubject struct {
	facts vresource.Facts
	// samePIDNS: teardown sees pids as the chain did, so shm creator
	// pids compare.
	samePIDNS bool
}

// refusal says why an object is not the chain's to remove, or "".
func (s ipcSubject) refusal(st ipcStat, rec *vresource.IPCRecord) string {
	if !s.facts.IPCAdmin && !slices.Contains(s.facts.UIDs, st.UID) && !slices.Contains(s.facts.UIDs, st.CUID) {
		return fmt.Sprintf("owned by uid %d and made by uid %d, and the chain runs as %v without CAP_SYS_ADMIN",
			st.UID, st.CUID, s.facts.UIDs)
	}
	if rec == nil {
		return "the chain has no record of making it"
	}
	cuid, uidOK := vresource.MapID(s.facts.UIDMap, rec.CUID)
	cgid, gidOK := vresource.MapID(s.facts.GIDMap, rec.CGID)
	// A 0 size, time or pid is one the layer could not learn.
	switch {
	case rec.Key != st.Key:
		return fmt.Sprintf("its key is %#x, the chain made one with key %#x", uint32(st.Key), uint32(rec.Key))
	case !uidOK || !gidOK || cuid != st.CUID || cgid != st.CGID:
		return fmt.Sprintf("made by %d:%d, the chain's was made by %d:%d (as the chain saw it)", st.CUID, st.CGID, rec.CUID, rec.CGID)
	case rec.Size != 0 && rec.Size != st.Size:
		return fmt.Sprintf("its size is %d, the chain's was %d", st.Size, rec.Size)
	case rec.CTime != 0 && rec.CTime != st.CTime:
		return fmt.Sprintf("changed at %d, the chain's at %d", st.CTime, rec.CTime)
	case rec.CPID != 0 && s.samePIDNS && rec.CPID != st.CPID:
		return fmt.Sprintf("made by pid %d, the chain's by pid %d", st.CPID, rec.CPID)
	}
	return ""
}

// RemoveIPC removes the System V objects the chain's tables name that
// pass the rules above, in the caller's IPC namespace, which must be the
// chain's (InIPCNamespace).  Objects left alone are logged, with why.
func RemoveIPC(t *vresource.Tables, facts vresource.Facts, log logrus.FieldLogger) error {
	who := ipcSubject{facts: facts, samePIDNS: samePIDNamespace(facts)}
	records := t.IPCRecords()
	var errs []error
	for _, rt := range []vresource.ResourceType{vresource.Sem, vresource.Shm, vresource.Msg} {
		for _, e := range t.Entries(rt) {
			st, err := sysv.StatObject(rt, e.Sys)
			if err != nil {
				continue // already gone
			}
			var rec *vresource.IPCRecord
			if r, ok := records[vresource.RecordKey{Type: rt, Sys: e.Sys}]; ok {
				rec = &r
			}
			if why := who.refusal(st, rec); why != "" {
				log.Warnf("chain %s: %s %d (virtual %d) left alone: %s", t.AID(), rt, e.Sys, e.Virt, why)
				continue
			}
			if err := sysv.RemoveObject(rt, e.Sys); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.EIDRM) {
				errs = append(errs, fmt.Errorf("remove %s %d (virtual %d): %w", rt, e.Sys, e.Virt, err))
			}
		}
	}
	return errors.Join(errs...)
}

// IPCRefusal judges the System V objects a chain's tables name by the
// rules above, as teardown does, for a snapshot, which must save only the
// chain's own: the function it returns says why the object sys of type
// rt is not the chain's, or "" when it is.  The caller's thread must be
// in the chain's IPC namespace (InIPCNamespace).
func IPCRefusal(t *vresource.Tables, facts vresource.Facts) func(rt vresource.ResourceType, sys int32) string {
	who := ipcSubject{facts: facts, samePIDNS: samePIDNamespace(facts)}
	records := t.IPCRecords()
	return func(rt vresource.ResourceType, sys int32) string {
		st, err := sysv.StatObject(rt, sys)
		if err != nil {
			return fmt.Sprintf("IPC_STAT: %v", err)
		}
		var rec *vresource.IPCRecord
		if r, ok := records[vresource.RecordKey{Type: rt, Sys: sys}]; ok {
			rec = &r
		}
		return who.refusal(st, rec)
	}
}

// RecordIPC is the record of an object vrid made for the chain (a
// restore's), as the layer writes one for the objects the chain makes:
// what IPC_STAT says of it now.
func RecordIPC(rt vresource.ResourceType, sys int32) (vresource.IPCRecord, error) {
	st, err := sysv.StatObject(rt, sys)
	if err != nil {
		return vresource.IPCRecord{}, fmt.Errorf("record %s %d: %w", rt, sys, err)
	}
	rec := vresource.IPCRecord{Type: rt, Sys: sys, Key: st.Key, CUID: st.CUID, CGID: st.CGID, CTime: st.CTime, Size: st.Size}
	if rt == vresource.Shm {
		rec.CPID = st.CPID
	}
	return rec, nil
}

// removeIPCHere removes the chain's objects if this thread is in its IPC
// namespace, and otherwise leaves them, saying so.
func removeIPCHere(t *vresource.Tables, facts vresource.Facts, log logrus.FieldLogger) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if ok, why := InIPCNamespace(facts); !ok {
		if n := t.Live(vresource.Sem) + t.Live(vresource.Shm) + t.Live(vresource.Msg); n > 0 {
			log.Warnf("chain %s: %d System V objects left alone: %s", t.AID(), n, why)
		}
		return nil
	}
	return RemoveIPC(t, facts, log)
}

// InIPCNamespace reports whether the calling thread is in the chain's IPC
// namespace, where its objects may be removed; why says what stops it.
// A chain whose namespace the host never learned has none.  Lock the OS
// thread before asking: namespaces belong to threads.
func InIPCNamespace(facts vresource.Facts) (ok bool, why string) {
	if facts.IPCNS.IsZero() {
		return false, "the chain's IPC namespace is unknown"
	}
	here, err := vresource.NamespaceOf("/proc/thread-self/ns/ipc")
	if err != nil {
		return false, err.Error()
	}
	if here != facts.IPCNS {
		return false, fmt.Sprintf("this is IPC namespace %s, the chain's is %s", here, facts.IPCNS)
	}
	return true, ""
}

func samePIDNamespace(facts vresource.Facts) bool {
	here, err := vresource.NamespaceOf("/proc/self/ns/pid")
	return err == nil && !facts.PIDNS.IsZero() && here == facts.PIDNS
}
