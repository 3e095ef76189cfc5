// Activity, from the node's /metrics (for callers allowed `read-metrics`), scraped every few
// seconds while the page is open and drawn with uPlot: requests and refusals a second, request
// latency percentiles, tokens generated a second, and the audit record's append latency.

import { useEffect, useRef, useState } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { text } from "../api";
import { buckets, parseMetrics, quantile, total, type Sample } from "../metrics";

const EVERY_MS = 3000;
const KEEP = 200;

interface Chart {
  id: string;
  title: string;
  unit: string;
  series: string[];
  colors: string[];
}

const CHARTS: Chart[] = [
  { id: "requests", title: "Requests a second", unit: "/s", series: ["requests", "refusals"], colors: ["#0b5cad", "#a4161a"] },
  { id: "latency", title: "Request latency (to the response's head)", unit: "s", series: ["p50", "p95", "p99"], colors: ["#146c2e", "#b35c00", "#a4161a"] },
  { id: "tokens", title: "Tokens generated a second", unit: "/s", series: ["tokens"], colors: ["#5b2a86"] },
  { id: "audit", title: "Audit append latency", unit: "s", series: ["p50", "p99"], colors: ["#146c2e", "#a4161a"] },
];

type Point = Record<string, number | null>;

function derive(prev: Sample[], cur: Sample[], seconds: number): Record<string, Point> {
  const rate = (name: string) => Math.max(0, total(cur, name) - total(prev, name)) / seconds;
  const http = [buckets(prev, "sov_http_request_duration_seconds"), buckets(cur, "sov_http_request_duration_seconds")] as const;
  const audit = [buckets(prev, "sov_audit_append_duration_seconds"), buckets(cur, "sov_audit_append_duration_seconds")] as const;
  return {
    requests: { requests: rate("sov_http_requests_total"), refusals: rate("sov_refusals_total") },
    latency: { p50: quantile(0.5, ...http), p95: quantile(0.95, ...http), p99: quantile(0.99, ...http) },
    tokens: { tokens: rate("sov_engine_generated_tokens_total") },
    audit: { p50: quantile(0.5, ...audit), p99: quantile(0.99, ...audit) },
  };
}

function Plot({ chart, times, points }: { chart: Chart; times: number[]; points: Point[] }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  useEffect(() => {
    if (!box.current) return;
    const width = Math.max(280, box.current.clientWidth);
    plot.current = new uPlot(
      {
        width,
        height: 180,
        series: [{}, ...chart.series.map((s, i) => ({ label: s, stroke: chart.colors[i], width: 2, value: (_u: uPlot, v: number | null) => (v == null ? "—" : `${v.toPrecision(3)} ${chart.unit}`) }))],
        axes: [{}, { size: 60 }],
        scales: { x: { time: true } },
      },
      [[], ...chart.series.map(() => [])],
      box.current,
    );
    return () => plot.current?.destroy();
  }, []);
  useEffect(() => {
    plot.current?.setData([times, ...chart.series.map((s) => points.map((p) => p[s] ?? null))] as uPlot.AlignedData);
  }, [times, points]);
  return (
    <figure class="chart">
      <figcaption>{chart.title}</figcaption>
      <div ref={box} role="img" aria-label={`${chart.title}: ${chart.series.map((s) => `${s} ${points.at(-1)?.[s]?.toPrecision(3) ?? "no data"}`).join(", ")}`} />
    </figure>
  );
}

export function Activity() {
  const [error, setError] = useState("");
  const [times, setTimes] = useState<number[]>([]);
  const [series, setSeries] = useState<Record<string, Point[]>>({});
  const [scrapes, setScrapes] = useState(0);

  useEffect(() => {
    let prev: { at: number; samples: Sample[] } | null = null;
    let stopped = false;
    const t: number[] = [];
    const data: Record<string, Point[]> = Object.fromEntries(CHARTS.map((c) => [c.id, []]));
    async function scrape() {
      try {
        const samples = parseMetrics(await text("/metrics"));
        const at = Date.now();
        if (prev) {
          const d = derive(prev.samples, samples, (at - prev.at) / 1000);
          t.push(at / 1000);
          for (const c of CHARTS) data[c.id].push(d[c.id]);
          if (t.length > KEEP) {
            t.shift();
            for (const c of CHARTS) data[c.id].shift();
          }
          setTimes([...t]);
          setSeries(Object.fromEntries(CHARTS.map((c) => [c.id, [...data[c.id]]])));
        }
        prev = { at, samples };
        setScrapes((n) => n + 1);
        setError("");
      } catch (e) {
        setError(e instanceof Error ? e.message : String(e));
      }
      if (!stopped) timer = window.setTimeout(scrape, EVERY_MS);
    }
    let timer = window.setTimeout(scrape, 0);
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, []);

  return (
    <section aria-labelledby="activity-title">
      <h1 id="activity-title">Activity</h1>
      <p>
        From <code>/metrics</code>, read every {EVERY_MS / 1000} s while this page is open ({scrapes} reads so far; each
        is a recorded <code>read-metrics</code> decision). Counts start when the node starts.
      </p>
      {error && <p class="error" role="alert">{error}</p>}
      <div class="charts">
        {CHARTS.map((c) => (
          <Plot chart={c} times={times} points={series[c.id] ?? []} />
        ))}
      </div>
    </section>
  );
}
