package executor

import (
	"fmt"
	"strings"
	"time"

	"github.com/kdcal/kdcal/internal/plan"
)

// view prints a Pool's progress: "[done/total] n running · elapsed · ETA",
// redrawn in place with one line per running step on a terminal, as a line
// every Interval otherwise, and a line per finished step. Inline (steps
// writing to the same stream) prints only the lines of finished steps,
// each with the count and ETA.
type view struct {
	st     *state
	opt    Options
	begin  time.Time
	inline bool
}

// start prints the view until the returned stop is called.
func (v *view) start() (stop func()) {
	if v.opt.Progress == nil || v.inline {
		return func() {}
	}
	every := v.opt.Interval
	if every <= 0 {
		every = 30 * time.Second
		if v.opt.Terminal {
			every = time.Second
		}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	lines := 0
	go func() {
		defer close(finished)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				if v.opt.Terminal {
					lines = v.redraw(lines)
				}
				return
			case <-t.C:
				if v.opt.Terminal {
					lines = v.redraw(lines)
				} else {
					fmt.Fprintln(v.opt.Progress, v.summary())
				}
			}
		}
	}()
	return func() { close(done); <-finished }
}

// finished prints the line of a finished step (not on a redrawn terminal
// view, which shows the count instead).
func (v *view) finished(s plan.Step, status Status, err error, d time.Duration) {
	if v.opt.Progress == nil || v.opt.Terminal && !v.inline {
		return
	}
	msg := fmt.Sprintf("%s %s (%s)", status, s.Key, d.Round(time.Second))
	if v.inline { // the step's own messages, error included, are on the same stream already
		count, _, times := v.parts()
		fmt.Fprintf(v.opt.Progress, "%s %s · %s\n", count, msg, times)
		return
	}
	if err != nil && status == Failed {
		msg += ": " + firstLine(err.Error())
	}
	v.st.mu.Lock()
	n := len(v.st.outcomes)
	v.st.mu.Unlock()
	fmt.Fprintf(v.opt.Progress, "[%d/%d] %s\n", n, len(v.st.steps), msg)
}

// summary is "[done/total] 3 running · 1m20s elapsed · ETA 4m10s": the ETA
// extrapolates the elapsed time by the cost done (finished steps, and the
// fraction of running ones their progress files report).
func (v *view) summary() string {
	count, running, times := v.parts()
	return fmt.Sprintf("%s %d running · %s", count, running, times)
}

// parts returns the summary's "[done/total]", the number of running steps
// and "1m20s elapsed · ETA 4m10s".
func (v *view) parts() (count string, running int, times string) {
	st := v.st
	st.mu.Lock()
	defer st.mu.Unlock()
	progressed := st.doneCost
	for _, s := range st.steps {
		if st.status[s.Key] != running_ {
			continue
		}
		running++
		if v.opt.StepProgress != nil {
			if f, _, ok := v.opt.StepProgress(s); ok {
				progressed += f * s.Cost
			}
		}
	}
	elapsed := time.Since(v.begin)
	eta := "ETA unknown"
	switch {
	case st.total > 0 && progressed >= st.total:
		eta = "ETA 0s"
	case progressed > 0 && st.total > 0:
		left := time.Duration(float64(elapsed) * (st.total - progressed) / progressed)
		eta = "ETA " + left.Round(time.Second).String()
	}
	return fmt.Sprintf("[%d/%d]", len(st.outcomes), len(st.steps)), running, elapsed.Round(time.Second).String() + " elapsed · " + eta
}

// redraw rewrites the view in place: the summary, then one line per running step.
func (v *view) redraw(prev int) int {
	var b strings.Builder
	if prev > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", prev) // cursor up
	}
	out := []string{v.summary()}
	st := v.st
	st.mu.Lock()
	for _, s := range st.steps {
		if st.status[s.Key] != running_ {
			continue
		}
		detail := ""
		if v.opt.StepProgress != nil {
			if f, d, ok := v.opt.StepProgress(s); ok {
				detail = fmt.Sprintf(" %3.0f%% %s", 100*f, d)
			}
		}
		out = append(out, fmt.Sprintf("  %-48s%s  %s", s.String(), detail, time.Since(st.started[s.Key]).Round(time.Second)))
	}
	st.mu.Unlock()
	for _, l := range out {
		b.WriteString("\x1b[2K" + l + "\n") // clear line, write
	}
	for i := len(out); i < prev; i++ {
		b.WriteString("\x1b[2K\n")
	}
	fmt.Fprint(v.opt.Progress, b.String())
	return max(len(out), prev)
}
