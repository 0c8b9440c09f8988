package monitor

import (
	"slices"
	"sync"
	"testing"
)

func TestRing(t *testing.T) {
	tests := []struct {
		name     string
		capacity int
		push     []int
		want     []int
	}{
		{"empty", 3, nil, []int{}},
		{"partly filled", 3, []int{1, 2}, []int{1, 2}},
		{"exactly full", 3, []int{1, 2, 3}, []int{1, 2, 3}},
		{"wrapped once", 3, []int{1, 2, 3, 4}, []int{2, 3, 4}},
		{"wrapped many times", 3, []int{1, 2, 3, 4, 5, 6, 7, 8}, []int{6, 7, 8}},
		{"capacity one", 1, []int{1, 2, 3}, []int{3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := NewRing[int](tc.capacity)
			for _, v := range tc.push {
				r.Push(v)
			}
			if got := r.Slice(); !slices.Equal(got, tc.want) {
				t.Errorf("Slice() = %v, want %v", got, tc.want)
			}
			if r.Len() != len(tc.want) || r.Cap() != tc.capacity {
				t.Errorf("Len %d Cap %d, want %d %d", r.Len(), r.Cap(), len(tc.want), tc.capacity)
			}
			for i, w := range tc.want {
				if got := r.At(i); got != w {
					t.Errorf("At(%d) = %d, want %d", i, got, w)
				}
			}
			last, ok := r.Last()
			if ok != (len(tc.want) > 0) || (ok && last != tc.want[len(tc.want)-1]) {
				t.Errorf("Last() = %d, %v; want the newest of %v", last, ok, tc.want)
			}
			var seen []int
			for i, v := range r.All() {
				if i != len(seen) {
					t.Errorf("All yields index %d at position %d", i, len(seen))
				}
				seen = append(seen, v)
				if len(seen) == 2 {
					break // stopping early must be honoured
				}
			}
			if want := tc.want[:min(2, len(tc.want))]; !slices.Equal(seen, want) {
				t.Errorf("All (stopped after 2) = %v, want %v", seen, want)
			}
		})
	}
}

func TestRingClearAndReuse(t *testing.T) {
	r := NewRing[*int](2)
	a, b, c := 1, 2, 3
	r.Push(&a)
	r.Push(&b)
	r.Push(&c)
	r.Clear()
	if r.Len() != 0 {
		t.Fatalf("Len after Clear = %d", r.Len())
	}
	for _, p := range r.buf {
		if p != nil {
			t.Errorf("Clear kept a reference: %v", r.buf)
		}
	}
	r.Push(&a)
	if got := r.Slice(); len(got) != 1 || *got[0] != 1 {
		t.Errorf("after Clear and Push: %v", got)
	}
}

func TestRingPanics(t *testing.T) {
	for name, f := range map[string]func(){
		"zero capacity":   func() { NewRing[int](0) },
		"At out of range": func() { r := NewRing[int](2); r.Push(1); r.At(1) },
		"negative At":     func() { r := NewRing[int](2); r.Push(1); r.At(-1) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			f()
		})
	}
}

// A slow consumer never blocks the sender; it gets the newest value, which
// carries the count of those it missed.
func TestSendLatestCoalesces(t *testing.T) {
	type msg struct{ seq, dropped int }
	ch := make(chan msg, 1)
	fold := func(old, v msg) msg { v.dropped += old.dropped + 1; return v }
	total := 0
	for i := 1; i <= 5; i++ {
		total += sendLatest(ch, msg{seq: i}, fold)
	}
	got := <-ch
	if got.seq != 5 || got.dropped != 4 || total != 4 {
		t.Errorf("got %+v after 5 sends (discarded %d), want seq 5 with 4 dropped", got, total)
	}
	select {
	case m := <-ch:
		t.Errorf("channel still holds %+v", m)
	default:
	}
	if d := sendLatest(ch, msg{seq: 6}, fold); d != 0 {
		t.Errorf("send on an empty channel discarded %d", d)
	}
}

// Sender and a concurrent consumer: every value is either received or
// counted as dropped, and the last one is always received.
func TestSendLatestConcurrent(t *testing.T) {
	type msg struct{ seq, dropped int }
	ch := make(chan msg, 1)
	const n = 20000
	var wg sync.WaitGroup
	var received, dropped, last int
	wg.Go(func() {
		for m := range ch {
			received++
			dropped += m.dropped
			last = m.seq
		}
	})
	for i := 1; i <= n; i++ {
		sendLatest(ch, msg{seq: i}, func(old, v msg) msg { v.dropped += old.dropped + 1; return v })
	}
	close(ch)
	wg.Wait()
	if received+dropped != n || last != n {
		t.Errorf("received %d + dropped %d = %d, want %d; last seq %d", received, dropped, received+dropped, n, last)
	}
}

func TestPercentile(t *testing.T) {
	var lat []int
	for i := 1; i <= 100; i++ {
		lat = append(lat, i)
	}
	p := NewRing[probeResult](100)
	for _, v := range lat {
		p.Push(probeResult{latency: ms(v), timedOut: v > 98})
	}
	pr := (&probe{window: p}).summarize(Probe{})
	if pr.N != 100 || pr.Timeouts != 2 || pr.P50 != Millis(ms(50)) || pr.P95 != Millis(ms(95)) || pr.P99 != Millis(ms(99)) || pr.Max != Millis(ms(100)) {
		t.Errorf("summary of 1..100 ms: %+v", pr)
	}
	one := NewRing[probeResult](10)
	one.Push(probeResult{latency: ms(7)})
	pr = (&probe{window: one}).summarize(Probe{})
	if pr.N != 1 || pr.P50 != Millis(ms(7)) || pr.P99 != Millis(ms(7)) || pr.Max != Millis(ms(7)) {
		t.Errorf("summary of one probe: %+v", pr)
	}
	if pr := (&probe{window: NewRing[probeResult](3)}).summarize(Probe{}); pr.N != 0 || pr.Max != 0 {
		t.Errorf("summary of no probe: %+v", pr)
	}
}
