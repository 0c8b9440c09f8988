package db

import (
	"context"
	"sync"
	"sync/atomic"
)

// PauseSwitch pauses and resumes a running backfill between batches: the
// batch in flight commits (batches are atomic), then the engine waits until
// Resume or until its context is cancelled (which stops the run cleanly;
// apply again resumes from the checkpoint). Headless `cutover apply` pauses
// on the first SIGINT during a backfill and aborts on the second.
type PauseSwitch struct {
	mu     sync.Mutex
	paused bool
	resume chan struct{}
	active atomic.Int32
}

// NewPauseSwitch returns a switch in the running position.
func NewPauseSwitch() *PauseSwitch { return &PauseSwitch{resume: make(chan struct{})} }

// Pause asks the backfill to stop after its current batch.
func (p *PauseSwitch) Pause() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paused = true
}

// Resume lets a paused backfill go on.
func (p *PauseSwitch) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.paused {
		p.paused = false
		close(p.resume)
		p.resume = make(chan struct{})
	}
}

// Paused reports whether a pause is asked.
func (p *PauseSwitch) Paused() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.paused
}

// InBackfill reports whether a backfill is running (a pause applies to it).
func (p *PauseSwitch) InBackfill() bool { return p.active.Load() > 0 }

func (p *PauseSwitch) enter() { p.active.Add(1) }
func (p *PauseSwitch) leave() { p.active.Add(-1) }

// wait blocks while paused; paused reports whether it waited.
func (p *PauseSwitch) wait(ctx context.Context, onPause func()) (paused bool, err error) {
	for {
		p.mu.Lock()
		if !p.paused {
			p.mu.Unlock()
			return paused, nil
		}
		ch := p.resume
		p.mu.Unlock()
		if !paused {
			paused = true
			if onPause != nil {
				onPause()
			}
		}
		select {
		case <-ctx.Done():
			return paused, ctx.Err()
		case <-ch:
		}
	}
}
