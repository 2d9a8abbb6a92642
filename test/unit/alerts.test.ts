/**
 * The chart's PrometheusRule is the one source of the alerts: rendered with Helm, checked
 * with `promtool check rules`, and every alert tested with `promtool test rules`
 * (test/unit/alerts/alerts_test.yaml: where it fires and where it must stay silent).
 */
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { renderChart } from "../../src/cli/generate-rbac.ts";
import { helmBinary, repoRoot } from "../../devkit/binaries.ts";

interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface RuleGroup {
  name: string;
  rules: AlertRule[];
}
interface PromtoolTests {
  tests: { name?: string; alert_rule_test?: { alertname: string; exp_alerts?: unknown[] }[] }[];
}

const TESTS = join(repoRoot, "test/unit/alerts/alerts_test.yaml");

function ruleGroups(set: Record<string, string> = {}, release?: string): RuleGroup[] {
  const rendered = renderChart(helmBinary(), {
    ...(release !== undefined && { release }),
    set: { "prometheusRule.enabled": "true", ...set },
    showOnly: ["prometheusrule.yaml"],
  });
  return (parse(rendered) as { spec: { groups: RuleGroup[] } }).spec.groups;
}

function promtool(args: readonly string[], cwd: string): { status: number | null; output: string } {
  const result = spawnSync("promtool", args, { cwd, encoding: "utf8" });
  if (result.error)
    throw new Error(`promtool: ${result.error.message} (install the Debian package prometheus)`);
  return { status: result.status, output: result.stdout + result.stderr };
}

const groups = ruleGroups();
const alerts = groups.flatMap((g) => g.rules);
const dir = mkdtempSync(join(tmpdir(), "hubmirror-alerts-"));
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe("alerts (PrometheusRule in the chart)", () => {
  it("include the ones on-call needs", () => {
    expect(alerts.map((a) => a.alert).sort()).toEqual(
      [
        "HubMirrorApplyErrors",
        "HubMirrorJobBlocked",
        "HubMirrorJobFailed",
        "HubMirrorJobPartiallyFailed",
        "HubMirrorJobStale",
        "HubMirrorNoLeader",
        "HubMirrorOperatorDown",
        "HubMirrorPendingDisruptiveChange",
        "HubMirrorPruneAwaitingApproval",
        "HubMirrorPruneFailed",
        "HubMirrorReconcileErrors",
        "HubMirrorRegistryUnreachable",
        "HubMirrorRolloutDegraded",
        "HubMirrorRolloutStuck",
        "HubMirrorVerificationMismatchedImages",
        "HubMirrorVerificationMissingImages",
      ].sort(),
    );
  });

  it("pass promtool check rules", () => {
    writeFileSync(join(dir, "full-rules.yaml"), stringify({ groups }));
    const { status, output } = promtool(["check", "rules", "full-rules.yaml"], dir);
    expect(output).toContain(`SUCCESS: ${alerts.length} rules found`);
    expect(status).toBe(0);
  });

  it("pass every promtool unit test (test/unit/alerts/alerts_test.yaml)", () => {
    // Summaries are compared; descriptions (long prose) are not, see alerts_test.yaml.
    const withoutDescriptions = groups.map((g) => ({
      ...g,
      rules: g.rules.map(({ annotations, ...rule }) => {
        const { description: _description, ...kept } = annotations ?? {};
        return { ...rule, annotations: kept };
      }),
    }));
    writeFileSync(join(dir, "rules.yaml"), stringify({ groups: withoutDescriptions }));
    copyFileSync(TESTS, join(dir, "alerts_test.yaml"));
    const { status, output } = promtool(["test", "rules", "alerts_test.yaml"], dir);
    expect(status, output).toBe(0);
    expect(output).toContain("SUCCESS");
  });

  it("each have a test where they fire and one where they stay silent", () => {
    const cases = (parse(readFileSync(TESTS, "utf8")) as PromtoolTests).tests.flatMap(
      (t) => t.alert_rule_test ?? [],
    );
    const untested = alerts
      .map((a) => a.alert)
      .filter(
        (name) =>
          !cases.some((c) => c.alertname === name && (c.exp_alerts ?? []).length > 0) ||
          !cases.some((c) => c.alertname === name && (c.exp_alerts ?? []).length === 0),
      );
    expect(untested).toEqual([]);
  });

  it.each(alerts.map((a) => [a.alert, a] as const))("%s says how bad it is and what to do", (_name, a) => {
    expect(a.for).toMatch(/^\d+[mh]$/);
    expect(["critical", "warning", "info"]).toContain(a.labels?.severity);
    expect(a.annotations?.summary).toBeTruthy();
    expect(a.annotations?.description).toMatch(/kubectl /);
  });

  it("select the release's own series and add alertLabels", () => {
    const other = ruleGroups({ "prometheusRule.alertLabels.team": "platform" }, "mirror").flatMap(
      (g) => g.rules,
    );
    for (const a of other) {
      expect(a.expr).toContain('job="mirror-hub-mirror-operator"');
      expect(a.labels?.team).toBe("platform");
    }
  });

  it("leave out HubMirrorNoLeader without leader election", () => {
    const names = ruleGroups({ "leaderElection.enabled": "false", replicaCount: "1" })
      .flatMap((g) => g.rules)
      .map((a) => a.alert);
    expect(names).not.toContain("HubMirrorNoLeader");
    expect(names).toContain("HubMirrorOperatorDown");
  });
});
