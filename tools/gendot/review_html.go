package main

// reviewHTML is the template of review.html. Everything is inline: the
// page must work from a checkout, offline, with no script from elsewhere.
const reviewHTML = `<!DOCTYPE html>
<!-- {{.Note}} -->
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>handover: state chart review</title>
<style>
body { font: 14px/1.45 Arial, "Liberation Sans", Helvetica, sans-serif; color: #1f2328; margin: 0; }
header, main > section { padding: 0 20px; }
header h1 { font-size: 20px; margin: 14px 0 2px; }
header p { margin: 2px 0 10px; color: #57606a; }
code { font: 12px/1.3 "DejaVu Sans Mono", Menlo, Consolas, monospace; }
#review { display: flex; gap: 16px; align-items: flex-start; padding: 0 20px; }
#chart-box { flex: 1 1 auto; min-width: 0; border: 1px solid #d0d7de; border-radius: 6px; }
#chart-tools { padding: 6px 10px; border-bottom: 1px solid #d0d7de; background: #f6f8fa; font-size: 13px; }
#chart { overflow: auto; max-height: 92vh; }
#chart svg { display: block; width: 100%; height: auto; }
#chart.zoom svg { width: auto; }
#chart.scenario g.edge { opacity: .14; }
#chart.scenario text[class^="edge_"] { opacity: .25; }
#chart.scenario g.edge.hl, #chart.scenario text.hl { opacity: 1; }
#chart g.edge.hl path { stroke-width: 4.5px; }
#chart g.edge.hl text, #chart text.hl { font-weight: bold; }
#chart g.node.visited path { stroke: #0969da; stroke-width: 3px; }
#chart g.edge.focus path { stroke-width: 8px; }
#chart g.edge.focus, #chart text.focus { opacity: 1 !important; }
#chart text.focus { text-decoration: underline; }
aside { flex: 0 0 400px; position: sticky; top: 0; max-height: 100vh; overflow: auto; }
aside h2, main h2 { font-size: 16px; margin: 12px 0 6px; }
#scenario-list { list-style: none; margin: 0; padding: 0; font-size: 13px; }
#scenario-list li { break-inside: avoid; }
#scenario-list label { display: block; padding: 1px 4px; border-radius: 4px; cursor: pointer; }
#scenario-list input:checked + span { font-weight: bold; color: #0969da; }
.steps { display: none; }
.steps.shown { display: block; }
.steps p { margin: 6px 0; color: #57606a; }
table { border-collapse: collapse; }
th, td { border: 1px solid #d0d7de; padding: 3px 6px; vertical-align: top; text-align: left; }
th { background: #f6f8fa; }
.steps table { font-size: 12px; width: 100%; }
.steps tr[data-edge]:hover { background: #fff8c5; cursor: default; }
.ignored { color: #6e7781; }
.restart td { background: #f6f8fa; color: #57606a; font-style: italic; }
.path { box-shadow: inset 5px 0 0 var(--c); padding-left: 10px; }
#matrix { font-size: 12px; }
#matrix td { min-width: 120px; }
#matrix td.ig { background: #f6f8fa; color: #6e7781; }
#matrix .to { font-weight: bold; }
#matrix .act { color: #57606a; }
#matrix .br + .br { border-top: 1px dotted #d0d7de; margin-top: 3px; padding-top: 3px; }
#matrix .br[data-edge]:hover { background: #fff8c5; }
main { padding-bottom: 40px; }
</style>
</head>
<body>
<header>
<h1>handover: migration state chart review</h1>
<p>Generated from <code>fsm.Declaration()</code> by <code>go run ./tools/gendot</code>; do not edit. {{.Summary}}
Edges read <code>event [guard] / action, action</code>; transitions that stay in a state are listed inside its box.
Pick a scenario from <code>testdata/fsm/scenarios</code> to light up its path; hover a step or a table cell to point at its edge.</p>
</header>
<div id="review">
<div id="chart-box">
<div id="chart-tools"><label><input type="checkbox" id="zoom"> actual size</label>
&nbsp; <button type="button" id="clear">clear scenario</button> <span id="picked"></span></div>
<div id="chart">
{{.SVG}}
</div>
</div>
<aside>
<h2>Scenarios</h2>
<ul id="scenario-list">
{{- range .Scenarios}}
<li><label><input type="radio" name="scenario" value="{{.Name}}"> <span>{{.Name}}</span></label></li>
{{- end}}
</ul>
{{- range .Scenarios}}
<div class="steps" id="steps-{{.Name}}" data-edges="{{.Edges}}" data-states="{{.States}}">
<h2>{{.Name}}</h2>
<p>{{.About}}</p>
<table>
<tr><th>line</th><th>event</th><th>from → to</th><th>actions, or why ignored</th></tr>
{{- range .Steps}}
{{- if .Restart}}
<tr class="restart"><td>{{.Line}}</td><td colspan="3">restart: a new machine in {{.To}}</td></tr>
{{- else if .Edge}}
<tr data-edge="{{.Edge}}"><td>{{.Line}}</td><td><code>{{.Event}}</code>{{if .Guard}} <code>{{.Guard}}</code>{{end}}</td><td class="path" style="--c: {{.Color}}">{{.From}} → <b>{{.To}}</b><br><small>{{.Path}}</small></td><td>{{.Actions}}</td></tr>
{{- else}}
<tr class="ignored"><td>{{.Line}}</td><td><code>{{.Event}}</code></td><td>{{.From}} (ignored)</td><td>{{.Reason}}</td></tr>
{{- end}}
{{- end}}
</table>
</div>
{{- end}}
</aside>
</div>
<main>
<section id="guards">
<h2>Guards</h2>
<p>A state × event pair may have guarded transitions, tried in order; the first whose guard holds is taken, else the pair's fallback (a transition or an ignore).</p>
<table>
<tr><th>guard</th><th>holds when</th></tr>
{{- range .Guards}}
<tr><td><code>[{{.Guard}}]</code></td><td>{{.Meaning}}</td></tr>
{{- end}}
</table>
</section>
<section id="rules">
<h2>Engine rules</h2>
<p>What <code>transport/engine</code> decides around the chart (<code>engine.Rules()</code>): how inputs become events, how guards are answered, what the chart leaves open. Each rule is pinned by the test named.</p>
<table>
<tr><th>rule</th><th>when</th><th>then</th><th>test</th></tr>
{{- range .Rules}}
<tr><td><code>{{.Name}}</code></td><td>{{.When}}</td><td>{{.Then}}</td><td><code>{{.Test}}</code></td></tr>
{{- end}}
</table>
</section>
<section id="paths">
<h2>Paths</h2>
<table>
<tr><th>path</th><th>drawn as</th><th>meaning</th></tr>
{{- range .Paths}}
<tr><td class="path" style="--c: {{.Color}}"><code>{{.Path}}</code></td><td>{{.Look}}</td><td>{{.About}}</td></tr>
{{- end}}
</table>
</section>
<section>
<h2>Every state × event</h2>
<p>Rows are events, columns states. A cell lists its guarded transitions, then the fallback: a transition, or grey when the event is ignored there, with the reason.</p>
<table id="matrix">
<tr><th>event</th>{{range .States}}<th>{{.}}</th>{{end}}</tr>
{{- range .Rows}}
<tr><th><code>{{.Event}}</code></th>
{{- range .Cells}}
<td{{if and .Ignored (not .Branches)}} class="ig"{{end}}>
{{- range .Branches}}<div class="br path" data-edge="{{.Edge}}" style="--c: {{.Color}}">{{if .Guard}}<code>{{.Guard}}</code> {{end}}<span class="to">→ {{.To}}</span>{{if .Actions}}<br><span class="act">/ {{.Actions}}</span>{{end}}</div>{{end}}
{{- if .Ignored}}<div class="br ignored">{{if .Else}}else {{end}}ignored: {{.Reason}}</div>{{end -}}
</td>
{{- end}}
</tr>
{{- end}}
</table>
</section>
</main>
<script>
(function () {
  "use strict";
  var chart = document.getElementById("chart");
  var svg = chart.querySelector("svg");
  function els(id) { return svg.querySelectorAll("#" + id + ", ." + id); }
  function mark(ids, cls) {
    svg.querySelectorAll("." + cls).forEach(function (e) { e.classList.remove(cls); });
    ids.forEach(function (id) { els(id).forEach(function (e) { e.classList.add(cls); }); });
  }
  function words(s) { return s ? s.split(" ") : []; }
  function pick(name) {
    document.querySelectorAll(".steps").forEach(function (d) { d.classList.remove("shown"); });
    var d = name && document.getElementById("steps-" + name);
    chart.classList.toggle("scenario", !!d);
    document.getElementById("picked").textContent = d ? "showing " + name : "";
    if (!d) {
      mark([], "hl"); mark([], "visited");
      document.querySelectorAll("#scenario-list input").forEach(function (i) { i.checked = false; });
      return;
    }
    d.classList.add("shown");
    mark(words(d.dataset.edges), "hl");
    mark(words(d.dataset.states), "visited");
    var r = document.querySelector("#scenario-list input[value='" + name + "']");
    if (r) { r.checked = true; }
  }
  document.querySelectorAll("#scenario-list input").forEach(function (i) {
    i.addEventListener("change", function () { pick(i.value); });
  });
  document.getElementById("clear").addEventListener("click", function () { pick(""); });
  document.getElementById("zoom").addEventListener("change", function (e) {
    chart.classList.toggle("zoom", e.target.checked);
  });
  document.querySelectorAll("[data-edge]").forEach(function (r) {
    r.addEventListener("mouseenter", function () { mark([r.dataset.edge], "focus"); });
    r.addEventListener("mouseleave", function () { mark([], "focus"); });
  });
  var m = /^#scenario=([\w-]+)$/.exec(location.hash);
  if (m) { pick(m[1]); }
})();
</script>
</body>
</html>
`
