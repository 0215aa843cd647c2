package analysis_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"go.yaml.in/yaml/v4"

	"github.com/mcpgw/mcpgw/services/importer/analysis"
)

// largestFiles are the corpus descriptions over 1 MB, each benchmarked as
// one sub-benchmark.
var largestFiles = []struct {
	name, file string
}{
	{"A03-openapi3.0-yaml-3.7MB", "A03__gram-openapi3.yaml"},
	{"A24-openapi3.0-json-2.4MB", "A24__obuk-2019-account-info-openapi-flattened.json"},
	{"A02-openapi3.1-json-1.2MB", "A02__discord-openapi.json"},
	{"A01-swagger2-json-1.2MB", "A01__slack_web_openapi_v2.json"},
	{"A25-swagger2-json-1.2MB", "A25__obuk-2019-payment-initiation-swagger-flattened.json"},
}

// benchFile is one description read and analysed once before measuring.
type benchFile struct {
	name       string
	data       []byte
	operations int
}

// loadLargest reads largestFiles and counts their operations. A file that
// cannot be read or that Analyze refuses fails the benchmark.
func loadLargest(b *testing.B) []benchFile {
	b.Helper()
	out := make([]benchFile, 0, len(largestFiles))
	for _, f := range largestFiles {
		data, err := os.ReadFile(filepath.Join(corpusDir, f.file))
		if err != nil {
			b.Fatalf("read %s: %v (the corpus of real descriptions must be at %s)", f.file, err, corpusDir)
		}
		res, err := analysis.Analyze(data, analysis.Options{})
		if err != nil {
			b.Fatalf("analyze %s: %v", f.file, err)
		}
		if len(res.Operations) == 0 {
			b.Fatalf("analyze %s: no operations", f.file)
		}
		out = append(out, benchFile{name: f.name, data: data, operations: len(res.Operations)})
	}
	return out
}

// heapSampler records the largest HeapInuse seen while it runs.
type heapSampler struct {
	stop chan struct{}
	done chan struct{}
	peak uint64
}

// heapSampleEvery is the sampling period; each sample stops the world
// briefly, the same for the analysis and its baseline.
const heapSampleEvery = 2 * time.Millisecond

func startHeapSampler() *heapSampler {
	s := &heapSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(heapSampleEvery)
		defer tick.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			s.peak = max(s.peak, ms.HeapInuse)
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

// Stop ends sampling and returns the peak in MB, including a last sample.
func (s *heapSampler) Stop() float64 {
	close(s.stop)
	<-s.done
	return float64(s.peak) / (1 << 20)
}

// measure runs fn over each file as a sub-benchmark and reports the
// description's operations per second and the peak heap in use. Nothing
// keeps fn's results: b.Loop keeps the calls from being optimised away, and
// each result is garbage once the next call starts.
func measure(b *testing.B, files []benchFile, fn func(data []byte) error) {
	for _, f := range files {
		b.Run(f.name, func(b *testing.B) {
			b.SetBytes(int64(len(f.data)))
			b.ReportAllocs()
			runtime.GC()
			heap := startHeapSampler()
			n := 0
			for b.Loop() {
				if err := fn(f.data); err != nil {
					b.Fatal(err)
				}
				n++
			}
			peak := heap.Stop()
			b.ReportMetric(float64(n*f.operations)/b.Elapsed().Seconds(), "operations/s")
			b.ReportMetric(peak, "peak-heap-MB")
		})
	}
}

// BenchmarkAnalyzeLargest analyses the largest corpus files. Read its
// figures as ratios to BenchmarkDecodeBaseline of the same run.
func BenchmarkAnalyzeLargest(b *testing.B) {
	measure(b, loadLargest(b), func(data []byte) error {
		_, err := analysis.Analyze(data, analysis.Options{})
		return err
	})
}

// BenchmarkDecodeBaseline decodes the same files into any, with the YAML
// library Analyze uses for YAML and encoding/json for JSON: the cost of
// reading the document at all.
func BenchmarkDecodeBaseline(b *testing.B) {
	measure(b, loadLargest(b), func(data []byte) error {
		var v any
		if t := bytes.TrimLeft(data, " \t\r\n"); len(t) > 0 && t[0] == '{' {
			return json.Unmarshal(data, &v)
		}
		return yaml.Unmarshal(data, &v)
	})
}
