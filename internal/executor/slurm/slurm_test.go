package slurm

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kdcal/kdcal/internal/config"
)

func okStage(name string) Stage {
	return Stage{Name: name, Tasks: []Task{{Key: "k", Args: []string{"/bin/true"}}}}
}

func TestValidate(t *testing.T) {
	good := Options{Dir: "/tmp/x", Slurm: config.Slurm{Time: "01:00:00", Mem: "4G", CPUsPerTask: 1, Poll: "2s"}}
	tests := []struct {
		name    string
		edit    func(*Options)
		stages  []Stage
		wantErr string // empty: valid
	}{
		{name: "ok", stages: []Stage{okStage("a"), {Name: "empty"}, okStage("b")}},
		{name: "partition with space", edit: func(o *Options) { o.Slurm.Partition = "a b" }, wantErr: "run.slurm.partition"},
		{name: "time with quote", edit: func(o *Options) { o.Slurm.Time = `1"` }, wantErr: "run.slurm.time"},
		{name: "mem with hash", edit: func(o *Options) { o.Slurm.Mem = "4G#x" }, wantErr: "run.slurm.mem"},
		{name: "negative cpus", edit: func(o *Options) { o.Slurm.CPUsPerTask = -1 }, wantErr: "run.slurm.cpus_per_task"},
		{name: "extra not an option", edit: func(o *Options) { o.Slurm.Extra = []string{"qos=short"} }, wantErr: "run.slurm.extra[0]"},
		{name: "extra option with value", edit: func(o *Options) { o.Slurm.Extra = []string{"-A", "my account"} }},
		{name: "bad poll", edit: func(o *Options) { o.Slurm.Poll = "2" }, wantErr: "run.slurm.poll"},
		{name: "no dir", edit: func(o *Options) { o.Dir = "" }, stages: []Stage{okStage("a")}, wantErr: "Options.Dir"},
		{name: "no dir, no tasks", edit: func(o *Options) { o.Dir = "" }, stages: []Stage{{Name: "a"}}},
		{name: "bad job name", edit: func(o *Options) { o.JobName = "my job" }, wantErr: "job name"},
		{name: "bad env", edit: func(o *Options) { o.Env = []string{"1X=2"} }, wantErr: "environment entry"},
		{name: "env without =", edit: func(o *Options) { o.Env = []string{"X"} }, wantErr: "environment entry"},
		{name: "bad stage name", stages: []Stage{okStage("a/b")}, wantErr: "stage name"},
		{name: "duplicate stage", stages: []Stage{okStage("a"), okStage("a")}, wantErr: "appears twice"},
		{name: "no command", stages: []Stage{{Name: "a", Tasks: []Task{{Key: "k"}}}}, wantErr: "has no command"},
		{name: "duplicate key", stages: []Stage{{Name: "a", Tasks: []Task{
			{Key: "k", Args: []string{"x"}}, {Key: "k", Args: []string{"y"}}}}}, wantErr: "two tasks with key"},
		{name: "NUL in argument", stages: []Stage{{Name: "a", Tasks: []Task{
			{Key: "k", Args: []string{"x", "a\x00b"}}}}}, wantErr: "NUL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := good
			if tt.edit != nil {
				tt.edit(&o)
			}
			err := validate(o, tt.stages)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("validate error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestSubmitWithoutClient checks the message users see on a machine without Slurm.
func TestSubmitWithoutClient(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := Submit(context.Background(), Options{Dir: t.TempDir()}, []Stage{okStage("a")})
	if !errors.Is(err, ErrNoClient) {
		t.Fatalf("Submit error = %v, want one wrapping ErrNoClient", err)
	}
	for _, want := range []string{"sbatch not found", "slurm-client", "--executor local"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

// TestSubmitNothing checks that a plan without tasks needs no Slurm at all.
func TestSubmitNothing(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	s, err := Submit(context.Background(), Options{}, []Stage{{Name: "a"}, {Name: "b"}})
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	res, err := s.Wait(context.Background(), nil)
	if err != nil || len(res) != 0 {
		t.Fatalf("Wait = %v, %v; want no results and no error", res, err)
	}
	if err := s.Cancel(); err != nil {
		t.Fatalf("Cancel: %v", err)
	}
}

func TestParseJobID(t *testing.T) {
	for in, want := range map[string]string{"42\n": "42", "42;cluster\n": "42", " 7 ": "7"} {
		got, err := parseJobID(in)
		if err != nil || got != want {
			t.Errorf("parseJobID(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "Submitted batch job 42", "x;y"} {
		if _, err := parseJobID(in); err == nil {
			t.Errorf("parseJobID(%q) succeeded, want an error", in)
		}
	}
}

func TestParseSqueue(t *testing.T) {
	// Captured from Slurm 22.05 (scripts/slurm-ci.sh): a running array, a
	// dependent array, a plain job, and a blank line.
	out := "1|2|RUNNING|None\n2|0|PENDING|Dependency\n2|1|PENDING|Dependency\n3|N/A|PENDING|DependencyNeverSatisfied\n\nbroken line\n"
	rows := parseSqueue(out)
	want := []queueRow{
		{"1", "2", "RUNNING", "None"}, {"2", "0", "PENDING", "Dependency"},
		{"2", "1", "PENDING", "Dependency"}, {"3", "N/A", "PENDING", "DependencyNeverSatisfied"},
	}
	if diff := cmp.Diff(want, rows); diff != "" {
		t.Fatalf("parseSqueue (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"1", "2", "3"}, activeJobs(rows)); diff != "" {
		t.Errorf("activeJobs (-want +got):\n%s", diff)
	}
	if got := activeJobs([]queueRow{{"4", "0", "COMPLETED", "None"}}); len(got) != 0 {
		t.Errorf("activeJobs of a completed task = %v, want none", got)
	}
}

func TestParseScontrol(t *testing.T) {
	// Abridged from `scontrol --oneliner show job` on Slurm 22.05: array job 1
	// (task 2 running, 1 failed with exit 3, 0 completed) and array job 2, whose
	// three tasks were cancelled together before starting.
	out := `JobId=1 ArrayJobId=1 ArrayTaskId=2 JobName=a.sh UserId=root(0) JobState=RUNNING Reason=None Dependency=(null) ExitCode=0:0 RunTime=00:00:01
JobId=5 ArrayJobId=1 ArrayTaskId=1 JobName=a.sh UserId=root(0) JobState=FAILED Reason=NonZeroExitCode Dependency=(null) ExitCode=3:0
JobId=4 ArrayJobId=1 ArrayTaskId=0 JobName=a.sh UserId=root(0) JobState=COMPLETED Reason=None Dependency=(null) ExitCode=0:0
JobId=2 ArrayJobId=2 ArrayTaskId=0-2 JobName=a.sh JobState=CANCELLED Reason=DependencyNeverSatisfied ExitCode=0:0
JobId=9 ArrayJobId=9 ArrayTaskId=4 JobState=TIMEOUT Reason=TimeLimit ExitCode=0:15
`
	got := parseScontrol(out, 5)
	want := map[int]ctlTask{
		0: {"CANCELLED", "DependencyNeverSatisfied", 0, 0}, // the later line for 0-2 wins
		1: {"CANCELLED", "DependencyNeverSatisfied", 0, 0},
		2: {"CANCELLED", "DependencyNeverSatisfied", 0, 0},
		4: {"TIMEOUT", "TimeLimit", 0, 15},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parseScontrol (-want +got):\n%s", diff)
	}
	first := parseScontrol(strings.Join(strings.Split(out, "\n")[:3], "\n"), 3) // job 1 only
	if c := first[1]; c.State != "FAILED" || c.Exit != 3 || c.Signal != 0 {
		t.Errorf("task 1 = %+v, want FAILED with exit 3", c)
	}
}

func TestExpandIndices(t *testing.T) {
	tests := []struct {
		spec string
		n    int
		want []int
	}{
		{"3", 10, []int{3}},
		{"0-2", 10, []int{0, 1, 2}},
		{"0-2,5,7-11:2%4", 20, []int{0, 1, 2, 5, 7, 9, 11}},
		{"0-4294967294", 3, []int{0, 1, 2}}, // bounded by n, whatever Slurm prints
		{"junk", 3, nil},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, expandIndices(tt.spec, tt.n)); diff != "" {
			t.Errorf("expandIndices(%q, %d) (-want +got):\n%s", tt.spec, tt.n, diff)
		}
	}
}

func TestClassify(t *testing.T) {
	ctl := func(state, reason string, exit, sig int) *ctlTask { return &ctlTask{state, reason, exit, sig} }
	tests := []struct {
		name     string
		in       noStatus
		want     State
		wantExit int
		reason   string
	}{
		{"completed, status file not visible", noStatus{started: true, ctl: ctl("COMPLETED", "None", 0, 0)}, Completed, 0, ""},
		{"exit 3, status file not visible", noStatus{started: true, ctl: ctl("COMPLETED", "None", 3, 0)}, Failed, 3, "non-zero"},
		{"killed by Slurm's dependency check", noStatus{ctl: ctl("CANCELLED", "DependencyNeverSatisfied", 0, 0)}, NotRun, -1, "dependency never satisfied"},
		{"cancelled while running", noStatus{started: true, ctl: ctl("CANCELLED", "None", 0, 15)}, Cancelled, -1, "while running"},
		{"cancelled while pending", noStatus{ctl: ctl("CANCELLED", "None", 0, 0)}, NotRun, -1, "before it started"},
		{"time limit", noStatus{started: true, ctl: ctl("TIMEOUT", "TimeLimit", 0, 15)}, Failed, -1, "TIMEOUT (TimeLimit), killed by signal 15"},
		{"launch failure", noStatus{ctl: ctl("FAILED", "NonZeroExitCode", 1, 0)}, Failed, 1, "FAILED"},
		{"purged, started", noStatus{started: true}, Failed, -1, "without writing an exit status"},
		{"purged, started, cancelled", noStatus{started: true, cancelled: true}, Cancelled, -1, "while running"},
		{"purged, earlier stage failed", noStatus{neverDep: true}, NotRun, -1, "dependency never satisfied"},
		{"purged, cancelled", noStatus{cancelled: true}, NotRun, -1, "before it started"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			state, exit, reason := tt.in.classify()
			if state != tt.want || exit != tt.wantExit || !strings.Contains(reason, tt.reason) {
				t.Errorf("classify = %s, %d, %q; want %s, %d, reason containing %q", state, exit, reason, tt.want, tt.wantExit, tt.reason)
			}
		})
	}
}

func TestTasksError(t *testing.T) {
	res := []Result{
		{Stage: "a", Index: 0, Key: "k0", JobID: "5_0", State: Completed, ExitCode: 0, LogPath: "/l/a_0.log"},
		{Stage: "a", Index: 1, Key: "k1", JobID: "5_1", State: Failed, ExitCode: 3, Reason: "the command exited with a non-zero status", LogPath: "/l/a_1.log"},
		{Stage: "b", Index: 0, Key: "k2", JobID: "6_0", State: NotRun, ExitCode: -1, Reason: "dependency never satisfied", LogPath: "/l/b_0.log"},
	}
	err := tasksError(res)
	var te *TasksError
	if !errors.As(err, &te) {
		t.Fatalf("tasksError = %v, want a *TasksError", err)
	}
	want := "2 of 3 slurm tasks did not complete\n" +
		"  stage a task 1 (k1, job 5_1): FAILED, exit code 3: the command exited with a non-zero status; log: /l/a_1.log\n" +
		"  1 task(s) did not run: dependency never satisfied"
	if diff := cmp.Diff(want, err.Error()); diff != "" {
		t.Errorf("message (-want +got):\n%s", diff)
	}
	if err := tasksError(res[:1]); err != nil {
		t.Errorf("tasksError of all completed = %v, want nil", err)
	}
}

func TestProgressString(t *testing.T) {
	p := Progress{Stages: []StageProgress{
		{Name: "a", Total: 4, Running: 1, Completed: 2, Failed: 1},
		{Name: "b", Total: 2, Pending: 2},
	}}
	if got, want := p.String(), "a 3/4 done, 1 running, 1 failed; b 0/2 done"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
}

func TestParseMaxArraySize(t *testing.T) {
	tests := []struct {
		out  string
		want int
		ok   bool
	}{
		{"MailProg                = /bin/true\nMaxArraySize            = 4\nMaxJobCount             = 10000\n", 4, true},
		{"MaxArraySize=1001\n", 1001, true},
		{"MaxJobCount = 10000\n", 0, false},
		{"MaxArraySize = lots\n", 0, false},
	}
	for _, tt := range tests {
		if got, ok := parseMaxArraySize(tt.out); got != tt.want || ok != tt.ok {
			t.Errorf("parseMaxArraySize(%q) = %d, %v; want %d, %v", tt.out, got, ok, tt.want, tt.ok)
		}
	}
}

// TestSplit: a stage past MaxArraySize becomes arrays of at most that many
// tasks, in order, named <stage>.1, <stage>.2, …; one that fits is kept.
func TestSplit(t *testing.T) {
	st := Stage{Name: "students"}
	for i := range 7 {
		st.Tasks = append(st.Tasks, Task{Key: fmt.Sprint(i), Args: []string{"true"}})
	}
	tests := []struct {
		max  int
		want string
	}{
		{7, "students:0-6"},
		{1001, "students:0-6"},
		{3, "students.1:0-2 students.2:3-5 students.3:6-6"},
		{1, "students.1:0-0 students.2:1-1 students.3:2-2 students.4:3-3 students.5:4-4 students.6:5-5 students.7:6-6"},
	}
	for _, tt := range tests {
		var got []string
		for _, p := range split(st, tt.max) {
			got = append(got, fmt.Sprintf("%s:%s-%s", p.Name, p.Tasks[0].Key, p.Tasks[len(p.Tasks)-1].Key))
		}
		if g := strings.Join(got, " "); g != tt.want {
			t.Errorf("max %d: %s, want %s", tt.max, g, tt.want)
		}
	}
}
