package vresource

import (
	"math"
	"runtime/debug"
)

// BindKey returns the private system key for a virtual IPC key, deriving
// one from the AID and the key when the chain has none yet (created):
// two chains using one fixed key get two objects.  It is vrid_bind_key of
// preload/table.c, so Go and C derive the same key.
func (t *Tables) BindKey(vkey int32) (skey int32, created bool, err error) {
	return t.bindKey(vkey, 0)
}

// bindKey is vrid_bind_key: a new mapping tries derived keys from attempt
// on, which the C side uses to step past keys that objects outside vrid
// hold.
func (t *Tables) bindKey(vkey int32, attempt uint32) (skey int32, created bool, err error) {
	if err := t.checkIDs(IPCKey, vkey); err != nil {
		return 0, false, err
	}
	ix := &t.idx[IPCKey]
	defer t.catchFault(&err)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	if skey, ok, err := ix.find(ix.byVirt, vkey); ok || err != nil {
		return skey, false, t.wrap(err)
	}
	err = t.withWriter(IPCKey, func() error {
		var ok bool
		if skey, ok = ix.findLocked(ix.byVirt, vkey); ok {
			return nil
		}
		if err := t.roomLocked(ix, false); err != nil {
			return err
		}
		for ; ; attempt++ {
			skey = deriveKey(t.aid, vkey, attempt)
			if skey == ipcPrivate || skey == math.MinInt32 {
				continue
			}
			// A key the chain already uses for another virtual key.
			if _, taken := ix.findLocked(ix.bySys, skey); !taken {
				break
			}
		}
		ix.insertLocked(vkey, skey)
		created = true
		return nil
	})
	return skey, created, err
}

const ipcPrivate = 0 // IPC_PRIVATE: never a derived key

// deriveKey is derive_key of preload/table.c: a splitmix64-style mix of
// the AID, the key and the attempt number, kept bit for bit.
func deriveKey(aid AID, vkey int32, attempt uint32) int32 {
	x := uint64(aid)*0x9e3779b97f4a7c15 ^ uint64(uint32(vkey))
	x += uint64(attempt) * 0xbf58476d1ce4e5b9
	x ^= x >> 31
	x *= 0x94d049bb133111eb
	x ^= x >> 29
	return int32(uint32(x))
}
