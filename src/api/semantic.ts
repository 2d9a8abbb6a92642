/**
 * Checks the API server cannot make, decided here and reported by the controller as a
 * condition: a schedule that is not valid cron, an unknown time zone, a blocked-image
 * expression that does not compile, an ImageSetConfiguration in a ConfigMap that does not
 * parse. Also the warnings of the runbook's review checklist, which never block a run.
 */
import { parseDocument } from "yaml";
import { imageSetConfigurationSchema, type ImageSetConfiguration } from "./imageset.ts";
import type { MirrorJobSpec } from "./mirrorjob.ts";
import { parseSchedule } from "./schedule.ts";
import { fieldErrors, type FieldError, type Validated } from "./validation.ts";

/** Errors of the spec itself (the ImageSetConfiguration from a ConfigMap is checked on its own). */
export function semanticErrors(spec: MirrorJobSpec): FieldError[] {
  const errors: FieldError[] = [];
  if (spec.schedule !== undefined) {
    const schedule = parseSchedule(spec.schedule, spec.timeZone);
    if (!schedule.ok) errors.push({ field: schedule.field, message: schedule.message });
  }
  if (spec.imageSet.inline !== undefined) {
    errors.push(...imageSetErrors(spec.imageSet.inline, "spec.imageSet.inline"));
  }
  return errors;
}

/**
 * Fields that name files inside the oc-mirror container. The operator mounts no such files
 * (a run sees only its workspace, cache and inputs), so oc-mirror would silently drop a
 * CatalogSource template and fail to collect a local chart: refused up front instead.
 */
function containerFileErrors(isc: ImageSetConfiguration, at: string): FieldError[] {
  const noFiles = "names a file inside the oc-mirror container, and the operator mounts no such file";
  return [
    ...(isc.mirror.operators ?? []).flatMap((op, i) =>
      op.targetCatalogSourceTemplate === undefined
        ? []
        : [
            {
              field: `${at}.mirror.operators[${i}].targetCatalogSourceTemplate`,
              message: `${noFiles}: leave it out (the generated CatalogSource is applied as oc-mirror writes it)`,
            },
          ],
    ),
    ...(isc.mirror.helm?.local ?? []).map((_, i) => ({
      field: `${at}.mirror.helm.local[${i}]`,
      message: `a local chart ${noFiles}: mirror the chart from a repository (mirror.helm.repositories)`,
    })),
    ...(isc.mirror.helm?.repositories ?? []).flatMap((repo, r) =>
      repo.charts.flatMap((chart, c) =>
        chart.path === undefined
          ? []
          : [
              {
                field: `${at}.mirror.helm.repositories[${r}].charts[${c}].path`,
                message: `${noFiles}: leave it out`,
              },
            ],
      ),
    ),
  ];
}

/** Semantic errors of an ImageSetConfiguration; `at` names where it came from. */
export function imageSetErrors(isc: ImageSetConfiguration, at: string): FieldError[] {
  return [...containerFileErrors(isc, at), ...blockedImageErrors(isc, at)];
}

function blockedImageErrors(isc: ImageSetConfiguration, at: string): FieldError[] {
  return (isc.mirror.blockedImages ?? []).flatMap((blocked, i) => {
    try {
      // JavaScript's RegExp stands in for Go's RE2 here: both reject unbalanced groups,
      // dangling quantifiers and bad escapes, the mistakes people make.
      new RegExp(blocked.name);
      return [];
    } catch (err) {
      return [
        {
          field: `${at}.mirror.blockedImages[${i}].name`,
          message: `not a valid regular expression: ${(err as Error).message}`,
        },
      ];
    }
  });
}

/**
 * Parses and validates an ImageSetConfiguration held as YAML in a ConfigMap key. Errors
 * name the ConfigMap, the key and the field (or line) so the user can find them.
 */
export function parseImageSetConfiguration(
  yamlText: string,
  source: string,
): Validated<ImageSetConfiguration> {
  const doc = parseDocument(yamlText, { uniqueKeys: true });
  const [yamlError] = doc.errors;
  if (yamlError !== undefined) {
    const line = yamlError.linePos?.[0].line;
    return {
      ok: false,
      errors: [
        {
          field: source,
          message: `not valid YAML${line !== undefined ? ` (line ${line})` : ""}: ${yamlError.message.split("\n")[0] ?? ""}`,
        },
      ],
    };
  }
  const result = imageSetConfigurationSchema.safeParse(doc.toJS());
  if (!result.success) return { ok: false, errors: fieldErrors(result.error, [source]) };
  const semantic = imageSetErrors(result.data, source);
  return semantic.length > 0 ? { ok: false, errors: semantic } : { ok: true, value: result.data };
}

/** The runbook's review checklist: worth a look, never an error. */
export function imageSetWarnings(isc: ImageSetConfiguration): string[] {
  const platform = isc.mirror.platform;
  if (platform === undefined) return [];
  const warnings: string[] = [];
  for (const channel of platform.channels ?? []) {
    if (channel.full !== true && (channel.minVersion === undefined || channel.maxVersion === undefined)) {
      warnings.push(
        `release channel ${channel.name} has no pinned ${channel.minVersion === undefined ? "minVersion" : "maxVersion"}: ` +
          "what it mirrors moves with the channel; pin minVersion and maxVersion for a reviewed range",
      );
    }
  }
  const mirrorsReleases = (platform.channels?.length ?? 0) > 0 || platform.release !== undefined;
  if (mirrorsReleases && platform.graph !== true) {
    warnings.push(
      "releases are mirrored without platform.graph: true: the OpenShift Update Service on disconnected clusters needs the graph image",
    );
  }
  return warnings;
}
