/* The registry: models, then a model's versions with status, key metrics against their
 * targets, aliases (and where they pointed before), lineage, and who registered each when.
 * A version's page lists the rollouts that brought it to a deployment (linked to the history).
 */
import { $, api, dateTime, el, note, pill, plain, text } from "./core.js";

function checkChips(checks) {
  if (!checks || !checks.length) return [el("span", { className: "muted", text: "not evaluated" })];
  return checks.map((c) => pill(
    c.metric + " " + (c.value === null || c.value === undefined ? "–" : plain(c.value)),
    c.passed ? "green" : "red",
    (c.passed ? "meets" : "misses") + " its target " + c.op + " " + plain(c.target) +
      (c.reason ? " (" + c.reason + ")" : ""),
  ));
}

function statusPill(v) {
  if (v.status === "rejected") return pill("rejected", "red", "misses a key metric's target");
  if (v.status === "archived") {
    return pill("archived", "grey", "hidden from listings; no alias may point at it");
  }
  if (v.serving && v.serving.length) return pill("serving", "green", v.serving.join(", "));
  return pill(v.status, "grey");
}

function versionLink(model, version) {
  return el("a", { href: "#/registry/" + encodeURIComponent(model) + "/" + version,
                   text: "v" + version });
}

function lineageText(lineage) {
  const parts = [];
  if (lineage.data_path) {
    parts.push("data " + lineage.data_path.split("/").pop() +
               (lineage.data_rows ? " (" + plain(lineage.data_rows) + " rows)" : ""));
  }
  if (lineage.git_commit) parts.push("commit " + String(lineage.git_commit).slice(0, 10));
  return parts.join(" · ") || "–";
}

async function showModels(body) {
  const models = (await api("/v1/models")).models || [];
  if (!models.length) {
    body.replaceChildren(note("No model is registered yet: run `modelpilot register`."));
    return;
  }
  if (models.length === 1) {
    await showModel(body, models[0].name);
    return;
  }
  body.replaceChildren(el("table", { className: "table" }, [
    el("thead", {}, [el("tr", {}, ["Model", "Versions", "Aliases", "Updated"]
      .map((h) => el("th", { text: h })))]),
    el("tbody", {}, models.map((m) => el("tr", {}, [
      el("td", {}, [el("a", { href: "#/registry/" + encodeURIComponent(m.name), text: m.name })]),
      el("td", { text: String(m.versions) }),
      el("td", { text: Object.entries(m.aliases).map(([a, v]) => a + " → v" + v).join(", ") }),
      el("td", { text: dateTime(m.updated_at) }),
    ]))),
  ]));
}

async function showModel(body, name) {
  const model = await api("/v1/models/" + encodeURIComponent(name));
  const versions = el("table", { className: "table", id: "registry-versions" }, [
    el("thead", {}, [el("tr", {}, ["Version", "Status", "Aliases", "Key metrics vs targets",
                                   "Lineage", "Registered"].map((h) => el("th", { text: h })))]),
    el("tbody", {}, model.versions.map((v) => el("tr", { "data-version": String(v.version) }, [
      el("td", {}, [versionLink(name, v.version), " ",
                    el("span", { className: "muted small", text: v.flavor })]),
      el("td", {}, [statusPill(v)]),
      el("td", {}, v.aliases.length ? v.aliases.map((a) => pill("@" + a, "blue")) : ["–"]),
      el("td", {}, checkChips(v.checks)),
      el("td", { className: "small", text: lineageText(v.lineage) }),
      el("td", { className: "small", text: dateTime(v.created_at) + " by " + v.created_by }),
    ]))),
  ]);
  const moves = model.alias_history.slice().reverse();
  const history = moves.length ? el("table", { className: "table compact" }, [
    el("thead", {}, [el("tr", {}, ["When", "Alias", "Moved", "By", "Why"]
      .map((h) => el("th", { text: h })))]),
    el("tbody", {}, moves.map((h) => el("tr", {}, [
      el("td", { text: dateTime(h.at) }),
      el("td", {}, [pill("@" + h.alias, "blue")]),
      el("td", {}, [h.previous_version === null ? "set to " : el("span", {}, [
        versionLink(name, h.previous_version), " → "]), versionLink(name, h.version)]),
      el("td", { text: h.by }),
      el("td", { className: "small", text: h.reason || "–" }),
    ]))),
  ]) : note("No alias was ever set.");
  body.replaceChildren(
    el("h3", { text: name + " · " + model.versions.length + " version(s)" }),
    el("div", { className: "scroll" }, [versions]),
    el("h3", { text: "Alias history" }), el("div", { className: "scroll" }, [history]),
  );
}

function keyValues(entries) {
  return el("dl", { className: "facts" }, entries.filter(([, v]) => v !== undefined)
    .flatMap(([k, v]) => [el("dt", { text: k }), el("dd", {}, [v instanceof Node ? v : text(v)])]));
}

function profileTable(profile) {
  if (!profile) return note("Registered without --data: no reference profile, no drift checks.");
  const rows = Object.entries(profile.features);
  if (profile.target) rows.push([profile.target.name + " (target)", profile.target]);
  return el("table", { className: "table compact" }, [
    el("thead", {}, [el("tr", {}, ["Feature", "Type", "Missing", "Range / top values"]
      .map((h) => el("th", { text: h })))]),
    el("tbody", {}, rows.map(([feature, f]) => el("tr", {}, [
      el("td", { text: feature }), el("td", { text: f.type }),
      el("td", { text: f.missing_share === null ? "–" : plain(f.missing_share * 100) + "%" }),
      el("td", { className: "small", text: f.top
        ? f.top.map((t) => t.value + " " + plain(t.share * 100) + "%").join(", ")
        : plain(f.min) + " … " + plain(f.median) + " … " + plain(f.max) }),
    ]))),
  ]);
}

async function showVersion(body, name, number) {
  const v = await api("/v1/models/" + encodeURIComponent(name) + "/versions/" + number);
  const rollouts = v.rollouts.length ? el("ul", { className: "plain-list", id: "version-rollouts" },
    v.rollouts.map((r) => el("li", {}, [
      el("a", { href: "#/history/" + encodeURIComponent(r.deployment) + "/rollout-" + r.id,
                text: r.strategy + " on " + r.deployment + ": v" + (r.primary_version ?? "–") +
                      " → v" + r.candidate_version }),
      " ", pill(r.status, r.status === "promoted" ? "green"
        : ["rolled_back", "failed", "aborted"].includes(r.status) ? "red" : "blue"),
      el("span", { className: "muted small", text: " " + dateTime(r.created_at) + " by " +
                                                   r.created_by }),
    ])))
    : note("No rollout involved this version.");
  const metrics = Object.entries(v.metrics || {}).filter(([, x]) => typeof x === "number");
  body.replaceChildren(
    el("p", {}, [el("a", { href: "#/registry/" + encodeURIComponent(name), text: "← " + name })]),
    el("h3", {}, [name + " v" + v.version + " ", statusPill(v), " ",
                  ...v.aliases.map((a) => pill("@" + a, "blue"))]),
    el("div", { className: "two" }, [
      el("section", {}, [
        el("h4", { text: "Key metrics against their targets" }),
        el("div", {}, checkChips(v.checks)),
        el("h4", { text: "Offline metrics" }),
        keyValues(metrics.map(([k, x]) => [k, x])),
        el("h4", { text: "Rollouts" }), rollouts,
      ]),
      el("section", {}, [
        el("h4", { text: "Lineage" }),
        keyValues([
          ["registered", dateTime(v.created_at) + " by " + v.created_by],
          ["flavor", v.flavor], ["sha256", String(v.sha256).slice(0, 16) + "…"],
          ["training data", v.lineage.data_path], ["data rows", v.lineage.data_rows],
          ["data sha256", v.lineage.data_sha256 && v.lineage.data_sha256.slice(0, 16) + "…"],
          ["holdout", v.lineage.eval_path], ["git commit", v.lineage.git_commit],
          ["source", v.lineage.source_path], ["host", v.lineage.host],
        ].filter(([, x]) => x !== undefined && x !== null)),
      ]),
    ]),
    el("h4", { text: "Training data profile" }), el("div", { className: "scroll" },
                                                     [profileTable(v.profile)]),
  );
}

/** #/registry, #/registry/MODEL or #/registry/MODEL/VERSION */
export async function show(parts) {
  const body = $("registry-body");
  const [model, version] = parts;
  if (model && version) await showVersion(body, model, version);
  else if (model) await showModel(body, model);
  else await showModels(body);
  $("view-registry").dataset.loaded = "yes";
}
