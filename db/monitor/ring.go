package monitor

import "iter"

// Ring is a bounded FIFO history: once it holds Cap values, each Push
// overwrites the oldest. It keeps chart history in constant memory. The zero
// value is not usable; make one with NewRing. A Ring is not safe for
// concurrent use.
type Ring[T any] struct {
	buf   []T
	start int // index of the oldest value
	n     int // values held
}

// NewRing returns an empty ring holding at most capacity values; it panics
// if capacity < 1.
func NewRing[T any](capacity int) *Ring[T] {
	if capacity < 1 {
		panic("monitor.NewRing: capacity must be at least 1")
	}
	return &Ring[T]{buf: make([]T, capacity)}
}

// Push appends v, overwriting the oldest value when the ring is full.
func (r *Ring[T]) Push(v T) {
	if r.n < len(r.buf) {
		r.buf[(r.start+r.n)%len(r.buf)] = v
		r.n++
		return
	}
	r.buf[r.start] = v
	r.start = (r.start + 1) % len(r.buf)
}

// Len returns how many values the ring holds.
func (r *Ring[T]) Len() int { return r.n }

// Cap returns how many values the ring can hold.
func (r *Ring[T]) Cap() int { return len(r.buf) }

// At returns the i-th value, 0 being the oldest; it panics when i is out of
// range.
func (r *Ring[T]) At(i int) T {
	if i < 0 || i >= r.n {
		panic("monitor.Ring.At: index out of range")
	}
	return r.buf[(r.start+i)%len(r.buf)]
}

// Last returns the newest value, and false when the ring is empty.
func (r *Ring[T]) Last() (T, bool) {
	if r.n == 0 {
		var zero T
		return zero, false
	}
	return r.At(r.n - 1), true
}

// All iterates over the values, oldest first.
func (r *Ring[T]) All() iter.Seq2[int, T] {
	return func(yield func(int, T) bool) {
		for i := 0; i < r.n; i++ {
			if !yield(i, r.buf[(r.start+i)%len(r.buf)]) {
				return
			}
		}
	}
}

// Slice returns a copy of the values, oldest first.
func (r *Ring[T]) Slice() []T {
	out := make([]T, 0, r.n)
	for _, v := range r.All() {
		out = append(out, v)
	}
	return out
}

// Clear empties the ring, releasing what it held.
func (r *Ring[T]) Clear() {
	clear(r.buf)
	r.start, r.n = 0, 0
}

// sendLatest delivers v on ch without ever blocking the sampler: when ch is
// full (the consumer is slow) the queued value is taken back and, through
// coalesce (when not nil), folded into v, so the consumer always finds the
// newest sample next. It returns how many queued values were discarded.
// There must be a single sender per channel, and ch must be buffered.
func sendLatest[T any](ch chan T, v T, coalesce func(discarded, v T) T) (discarded int) {
	for {
		select {
		case ch <- v:
			return discarded
		default:
		}
		select {
		case old := <-ch:
			discarded++
			if coalesce != nil {
				v = coalesce(old, v)
			}
		default:
			// The consumer took the queued value in between: try again.
		}
	}
}
