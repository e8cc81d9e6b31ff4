package local

import (
	"fmt"
	"strings"
	"time"
)

// startView prints the progress of the run until the returned stop is called.
func startView(st *state, opt Options, begin time.Time) (stop func()) {
	if opt.Progress == nil {
		return func() {}
	}
	every := opt.Interval
	if every <= 0 {
		every = 30 * time.Second
		if opt.Terminal {
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
				if opt.Terminal {
					lines = redraw(opt, st, begin, lines)
				}
				return
			case <-t.C:
				if opt.Terminal {
					lines = redraw(opt, st, begin, lines)
				} else {
					fmt.Fprintln(opt.Progress, summaryLine(opt, st, begin))
				}
			}
		}
	}()
	return func() { close(done); <-finished }
}

// summaryLine is "[done/total] 3 running · 1m20s elapsed · ETA 4m10s".
func summaryLine(opt Options, st *state, begin time.Time) string {
	st.mu.Lock()
	defer st.mu.Unlock()
	running, progressed := 0, st.doneCost
	for _, s := range st.steps {
		if st.status[s.Key] != "running" {
			continue
		}
		running++
		if opt.StepProgress != nil {
			if f, _, ok := opt.StepProgress(s); ok {
				progressed += f * s.Cost
			}
		}
	}
	elapsed := time.Since(begin)
	eta := "ETA unknown"
	if progressed > 0 && st.total > 0 {
		left := time.Duration(float64(elapsed) * (st.total - progressed) / progressed)
		eta = "ETA " + left.Round(time.Second).String()
	}
	return fmt.Sprintf("[%d/%d] %d running · %s elapsed · %s", len(st.outcomes), len(st.steps), running,
		elapsed.Round(time.Second), eta)
}

// redraw rewrites the view in place: the summary, then one line per running step.
func redraw(opt Options, st *state, begin time.Time, prev int) int {
	var b strings.Builder
	if prev > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", prev) // cursor up
	}
	out := []string{summaryLine(opt, st, begin)}
	st.mu.Lock()
	for _, s := range st.steps {
		if st.status[s.Key] != "running" {
			continue
		}
		detail := ""
		if opt.StepProgress != nil {
			if f, d, ok := opt.StepProgress(s); ok {
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
	fmt.Fprint(opt.Progress, b.String())
	return max(len(out), prev)
}
