package report

// statsDoc is stats.json: every statistic of the report, machine-readable.
type statsDoc struct {
	Experiment    string           `json:"experiment"`
	ReportHash    string           `json:"report_hash"`
	Level         float64          `json:"level"`
	Alpha         float64          `json:"alpha"`
	Bootstrap     bootstrapDoc     `json:"bootstrap"`
	Permutations  int              `json:"permutations"`
	StepsUsed     int              `json:"steps_used"`
	StepsExpected int              `json:"steps_expected"`
	CalMethod     string           `json:"calibrator_in_tables"`
	Settings      []settingDoc     `json:"settings"`
	EffTemp       map[string]*Corr `json:"effective_temperature_vs_student_accuracy,omitempty"`
	Conclusion    conclusionDoc    `json:"conclusion"`
}

type bootstrapDoc struct {
	Resamples int    `json:"resamples"`
	Seed      int    `json:"seed"`
	Scheme    string `json:"scheme"`
	Interval  string `json:"interval"`
}

type settingDoc struct {
	Setting          string            `json:"setting"`
	Tau              float64           `json:"tau"`
	KDWeight         float64           `json:"kd_weight"`
	Epochs           int               `json:"epochs"`
	SizeVsAcc        map[string]*Corr  `json:"teacher_params_vs_student_accuracy"`
	ECEVsAcc         map[string]*Corr  `json:"teacher_ece_vs_student_accuracy"`
	TeacherAccVsAcc  map[string]*Corr  `json:"teacher_accuracy_vs_student_accuracy"`
	RhoDiff          *Diff             `json:"rho_calibrated_minus_raw,omitempty"`
	CalMinusRaw      []Diff            `json:"accuracy_calibrated_minus_raw_per_size,omitempty"`
	CalMinusRawAll   *Diff             `json:"accuracy_calibrated_minus_raw,omitempty"`
	KDMinusScratch   map[string]*Diff  `json:"accuracy_kd_minus_scratch,omitempty"`
	ConclusionGrades map[string]string `json:"size_claim"`
	ConclusionText   []string          `json:"conclusion"`
}

type conclusionDoc struct {
	Headline string   `json:"headline"`
	EffTemp  []string `json:"effective_temperature,omitempty"`
	Caveats  []string `json:"caveats,omitempty"`
}

func (e Evidence) String() string {
	return [...]string{"unavailable", "inconclusive", "trend without significance", "supported"}[e]
}

func (a *Analysis) statsDoc(hash string, c Conclusion) statsDoc {
	cfg := a.Study.Cfg
	d := statsDoc{
		Experiment: cfg.Name, ReportHash: hash, Level: Level, Alpha: Alpha, Permutations: cfg.Report.Permutations,
		StepsUsed: a.Study.UsedCount(), StepsExpected: len(a.Study.Steps), CalMethod: a.CalMethod, EffTemp: a.EffTemp,
		Bootstrap: bootstrapDoc{Resamples: cfg.Report.Bootstrap, Seed: cfg.Report.Seed,
			Scheme:   "seeds resampled with replacement, jointly across sizes and arms",
			Interval: "percentile (empirical quantiles)"},
		Conclusion: conclusionDoc{Headline: c.Headline, EffTemp: c.EffTemp, Caveats: c.Caveats},
	}
	for i, r := range a.Settings {
		sd := settingDoc{Setting: r.Name, Tau: r.Setting.Tau, KDWeight: r.Setting.KDWeight, Epochs: r.Setting.Epochs,
			SizeVsAcc: r.SizeVsAcc, ECEVsAcc: r.ECEVsAcc, TeacherAccVsAcc: r.TeacherAccVsAc, RhoDiff: r.RhoDiff,
			CalMinusRaw: r.CalMinusRaw, CalMinusRawAll: r.CalMinusRawAll, KDMinusScratch: r.KDMinusScratch,
			ConclusionGrades: map[string]string{}, ConclusionText: c.Settings[i].Lines}
		for arm, ev := range c.Settings[i].SizeClaim {
			sd.ConclusionGrades[arm] = ev.String()
		}
		d.Settings = append(d.Settings, sd)
	}
	return d
}
