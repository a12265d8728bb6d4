// Configuration management: the CI graph on the CI page (ECharts). Starts from the CI with its
// direct neighbours both ways, from the impact API; clicking a CI expands its neighbours,
// clicking an expanded CI collapses what only it brought in.
(function () {
  "use strict";
  const box = document.getElementById("ci-graph");
  if (!box || typeof echarts === "undefined") return;
  const origin = box.dataset.ci;
  const chart = echarts.init(box);
  const nodes = new Map(); // id → {id, name, category, by: set of ids that brought it in}
  const links = new Map(); // "s|t|kind" → {source, target, kind}
  const expanded = new Set();
  const classes = [];

  function category(cls) {
    let i = classes.indexOf(cls);
    if (i < 0) { classes.push(cls); i = classes.length - 1; }
    return i;
  }

  function render() {
    chart.setOption({
      tooltip: { formatter: p => p.dataType === "edge" ? p.data.kind : p.data.name + " (" + classes[p.data.category] + ")" },
      legend: [{ data: classes.slice(), bottom: 0 }],
      series: [{
        type: "graph", layout: "force", roam: true, draggable: true,
        force: { repulsion: 220, edgeLength: 90 },
        categories: classes.map(c => ({ name: c })),
        label: { show: true, position: "right" },
        edgeSymbol: ["none", "arrow"],
        edgeLabel: { show: true, formatter: p => p.data.kind, fontSize: 10 },
        data: Array.from(nodes.values()).map(n => ({
          id: n.id, name: n.name, category: n.category,
          symbolSize: n.id === origin ? 34 : 22,
          itemStyle: expanded.has(n.id) ? { borderColor: "#333", borderWidth: 2 } : {},
        })),
        links: Array.from(links.values()),
      }],
    }, { replaceMerge: ["series", "legend"] });
  }

  async function neighbours(id) {
    const out = [];
    for (const dir of ["downstream", "upstream"]) {
      const r = await fetch("/api/v1/cis/" + encodeURIComponent(id) + "/impact?direction=" + dir + "&max_depth=1", { credentials: "same-origin" });
      if (!r.ok) continue;
      const v = await r.json();
      for (const e of v.reached) out.push({ ci: e.ci, step: e.path[e.path.length - 1] });
    }
    return out;
  }

  async function expand(id) {
    expanded.add(id);
    for (const { ci, step } of await neighbours(id)) {
      if (!nodes.has(ci.id)) nodes.set(ci.id, { id: ci.id, name: ci.name, category: category(ci.class_key), by: new Set([id]) });
      else nodes.get(ci.id).by.add(id);
      if (step) links.set(step.source_id + "|" + step.target_id + "|" + step.kind, { source: step.source_id, target: step.target_id, kind: step.kind });
    }
    render();
  }

  function collapse(id) {
    expanded.delete(id);
    for (const n of Array.from(nodes.values())) {
      n.by.delete(id);
      if (n.id !== origin && n.by.size === 0 && !expanded.has(n.id)) {
        nodes.delete(n.id);
        for (const [k, l] of links) if (l.source === n.id || l.target === n.id) links.delete(k);
      }
    }
    render();
  }

  chart.on("click", p => {
    if (p.dataType !== "node") return;
    if (p.data.id === origin || !expanded.has(p.data.id)) { if (!expanded.has(p.data.id)) expand(p.data.id); }
    else collapse(p.data.id);
  });
  chart.on("dblclick", p => { if (p.dataType === "node") window.location.href = "/cmdb/" + encodeURIComponent(p.data.id); });
  nodes.set(origin, { id: origin, name: box.dataset.name, category: category(box.dataset.class), by: new Set() });
  expand(origin);
  window.addEventListener("resize", () => chart.resize());
})();
