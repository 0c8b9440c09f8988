package schema

// benchDump gives the external tests (apply_test.go) the generated
// 1,000-table dump of bench_test.go.
var BenchDump = generateDump
