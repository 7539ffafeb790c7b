package criu

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/fown"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

type protoMessage = proto.Message

// pidFields lists, per message of CRIU's images, the fields that hold a
// pid, tid, process group or session id (images/*.proto of CRIU 4.2).
// Messages are found wherever they nest: fown_entry sits in every kind of
// file entry.
var pidFields = map[protoreflect.FullName][]protoreflect.Name{
	"pstree_entry":      {"pid", "ppid", "pgid", "sid", "threads"},
	"fown_entry":        {"pid"},
	"file_lock_entry":   {"pid"},
	"tty_info_entry":    {"sid", "pgrp"},
	"posix_timer_entry": {"notify_thread_id"},
}

// Fields CRIU 4.2 writes that go-criu v7.2.0's protos lack.  They reach us
// as unknown fields, which proto keeps and re-encodes as they were.  Only
// these are accepted, each checked against CRIU 4.2's images/*.proto to
// hold no pid; file_entry's pidfd is decoded by hand (pidfdField).
var knownUnknownFields = map[protoreflect.FullName][]protowire.Number{
	"task_core_entry":      {22},     // membarrier_registration_mask
	"user_x86_xsave_entry": {9},      // cet
	"creds_entry":          {18, 19}, // no_new_privs, cap_amb
	"ip_opts_entry":        {6, 7},   // tos, ttl
	"inet_sk_entry":        {20},     // tcp_opts
}

const (
	fileEntryName = "file_entry"
	pidfdField    = 22 // file_entry.pidfd, a pidfd_entry (CRIU 4.2 pidfd.proto)
	pidfdNspid    = 4  // pidfd_entry.nspid, int32; -1 for a dead process
	pidfdFown     = 5  // pidfd_entry.fown
)

// pidRewriter maps the ids of one tree; ids outside the tree stay.
type pidRewriter map[int]int

func (r pidRewriter) pid(p int) int {
	if n, ok := r[p]; ok {
		return n
	}
	return p
}

// message rewrites every pid in m and in the messages it holds.
func (r pidRewriter) message(m protoreflect.Message) error {
	d := m.Descriptor()
	for _, name := range pidFields[d.FullName()] {
		r.field(m, d.Fields().ByName(name))
	}
	if d.FullName() == "siginfo_entry" {
		f := d.Fields().ByName("siginfo")
		if m.Has(f) {
			m.Set(f, protoreflect.ValueOfBytes(r.siginfo(m.Get(f).Bytes())))
		}
	}
	if err := r.unknown(m); err != nil {
		return err
	}
	var err error
	m.Range(func(f protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if f.Message() == nil || f.IsMap() {
			return true
		}
		if f.IsList() {
			l := v.List()
			for i := 0; i < l.Len() && err == nil; i++ {
				err = r.message(l.Get(i).Message())
			}
		} else {
			err = r.message(v.Message())
		}
		return err == nil
	})
	return err
}

// field rewrites one pid field, scalar or repeated, of a 32-bit kind.
func (r pidRewriter) field(m protoreflect.Message, f protoreflect.FieldDescriptor) {
	conv := func(v protoreflect.Value) protoreflect.Value {
		if f.Kind() == protoreflect.Uint32Kind {
			return protoreflect.ValueOfUint32(uint32(r.pid(int(v.Uint()))))
		}
		return protoreflect.ValueOfInt32(int32(r.pid(int(v.Int()))))
	}
	if !m.Has(f) {
		return
	}
	if f.IsList() {
		l := m.Mutable(f).List()
		for i := 0; i < l.Len(); i++ {
			l.Set(i, conv(l.Get(i)))
		}
		return
	}
	m.Set(f, conv(m.Get(f)))
}

// siginfo rewrites si_pid in a raw siginfo_t (x86_64 layout) when its
// layout carries one.
func (r pidRewriter) siginfo(b []byte) []byte {
	const sigPidOff = 16 // after si_signo, si_errno, si_code and padding
	if len(b) < sigPidOff+4 {
		return b
	}
	signo := int32(binary.LittleEndian.Uint32(b[0:]))
	code := int32(binary.LittleEndian.Uint32(b[8:]))
	if !siginfoHasPid(signo, code) {
		return b
	}
	out := append([]byte(nil), b...)
	p := int32(binary.LittleEndian.Uint32(out[sigPidOff:]))
	binary.LittleEndian.PutUint32(out[sigPidOff:], uint32(int32(r.pid(int(p)))))
	return out
}

// siginfoHasPid says whether a siginfo with this signal and si_code has
// si_pid at its place, following the kernel's siginfo_layout(): kill,
// sigqueue, tkill, mq_notify and SIGCHLD do; timers, SIGIO and faults hold
// other data there.
func siginfoHasPid(signo, code int32) bool {
	const (
		siUser   = 0
		siKernel = 0x80
		siTimer  = -2
		siSigio  = -5
		nsigpoll = 6
	)
	if code <= siUser || code >= siKernel {
		return code != siTimer && code != siSigio
	}
	// si_code > 0 was set by the kernel for this signal.
	if limit, ok := sigCodeLimits[signo]; ok && code <= limit {
		return signo == int32(unix.SIGCHLD)
	}
	return code > nsigpoll
}

// sigCodeLimits holds, per signal with a layout of its own, its last
// si_code (NSIGILL, NSIGFPE, ... in the kernel's uapi siginfo.h).
var sigCodeLimits = map[int32]int32{
	int32(unix.SIGILL): 11, int32(unix.SIGFPE): 15, int32(unix.SIGSEGV): 10,
	int32(unix.SIGBUS): 5, int32(unix.SIGTRAP): 6, int32(unix.SIGCHLD): 6,
	int32(unix.SIGPOLL): 6, int32(unix.SIGSYS): 2,
}

// unknown checks the fields of m that go-criu's protos lack, and rewrites
// the pids of a pidfd entry.
func (r pidRewriter) unknown(m protoreflect.Message) error {
	raw := m.GetUnknown()
	if len(raw) == 0 {
		return nil
	}
	name := m.Descriptor().FullName()
	var out []byte
	for len(raw) > 0 {
		num, typ, n := protowire.ConsumeField(raw)
		if n < 0 {
			return fmt.Errorf("%s: %w: bad unknown field", name, ErrBadImage)
		}
		field := raw[:n]
		raw = raw[n:]
		switch {
		case name == fileEntryName && num == pidfdField && typ == protowire.BytesType:
			val, vn := protowire.ConsumeBytes(field[protowire.SizeTag(num):])
			if vn < 0 {
				return fmt.Errorf("pidfd entry: %w", ErrBadImage)
			}
			pidfd, err := r.pidfd(val)
			if err != nil {
				return err
			}
			out = protowire.AppendTag(out, num, typ)
			out = protowire.AppendBytes(out, pidfd)
			continue
		case slices.Contains(knownUnknownFields[name], num):
		default:
			return fmt.Errorf("%w: field %d of %s is unknown to go-criu, and may hold a pid", ErrUnsupportedImage, num, name)
		}
		out = append(out, field...)
	}
	m.SetUnknown(out)
	return nil
}

// pidfd rewrites a pidfd_entry, which go-criu v7.2.0 does not know: its
// nspid, the process the pidfd refers to, and its fown.
func (r pidRewriter) pidfd(b []byte) ([]byte, error) {
	var out []byte
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeField(b)
		if n < 0 {
			return nil, fmt.Errorf("pidfd entry: %w", ErrBadImage)
		}
		field := b[:n]
		b = b[n:]
		switch {
		case num == pidfdNspid && typ == protowire.VarintType:
			v, _ := protowire.ConsumeVarint(field[protowire.SizeTag(num):])
			out = protowire.AppendTag(out, num, typ)
			out = protowire.AppendVarint(out, uint64(int64(int32(r.pid(int(int32(v)))))))
		case num == pidfdFown && typ == protowire.BytesType:
			v, _ := protowire.ConsumeBytes(field[protowire.SizeTag(num):])
			fe := &fown.FownEntry{}
			if err := proto.Unmarshal(v, fe); err != nil {
				return nil, fmt.Errorf("pidfd entry fown: %w: %v", ErrBadImage, err)
			}
			if err := r.message(fe.ProtoReflect()); err != nil {
				return nil, err
			}
			enc, err := proto.Marshal(fe)
			if err != nil {
				return nil, fmt.Errorf("pidfd entry fown: %w", err)
			}
			out = protowire.AppendTag(out, num, typ)
			out = protowire.AppendBytes(out, enc)
		default:
			out = append(out, field...)
		}
	}
	return out, nil
}
