package vresource

import "testing"

// benchTables holds 8000 pids in the default 16384-slot table: about
// half full, where a busy chain lives.
func benchTables(b *testing.B) *Tables {
	tb := newTables(b, TableOptions{})
	for sys := int32(0); sys < 8000; sys++ {
		mustBind(b, tb, PID, 1000+sys*3)
	}
	return tb
}

func BenchmarkLookup(b *testing.B) {
	tb := benchTables(b)
	var i int32
	for b.Loop() {
		if _, ok := tb.Lookup(PID, 1000+i*3); !ok {
			b.Fatal("miss")
		}
		i = (i + 1) % 8000
	}
}

func BenchmarkReverse(b *testing.B) {
	tb := benchTables(b)
	var i int32
	for b.Loop() {
		if _, ok := tb.Reverse(PID, 1000+i*3); !ok {
			b.Fatal("miss")
		}
		i = (i + 1) % 8000
	}
}

func BenchmarkLookupMiss(b *testing.B) {
	tb := benchTables(b)
	var i int32
	for b.Loop() {
		if _, ok := tb.Lookup(PID, 1001+i*3); ok {
			b.Fatal("hit")
		}
		i = (i + 1) % 8000
	}
}

func BenchmarkLookupParallel(b *testing.B) {
	tb := benchTables(b)
	b.RunParallel(func(pb *testing.PB) {
		var i int32
		for pb.Next() {
			tb.Lookup(PID, 1000+i*3)
			i = (i + 1) % 8000
		}
	})
}

func BenchmarkBindRemove(b *testing.B) {
	tb := benchTables(b)
	for b.Loop() {
		if _, err := tb.Bind(PID, 999999); err != nil {
			b.Fatal(err)
		}
		if err := tb.RemoveSys(PID, 999999); err != nil {
			b.Fatal(err)
		}
	}
}
