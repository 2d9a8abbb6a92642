/** Small schemas shared by the MirrorJob API and the ImageSetConfiguration. */
import { z } from "zod";
import { DIGEST_PATTERN, PORT_PATTERN } from "../registry/reference.ts";
import { pattern } from "./rules.ts";

/** A DNS subdomain, the form of most Kubernetes object names. */
export const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Kubernetes object name (DNS subdomain). */
export const objectName = (description: string) =>
  z.string().min(1).max(253).regex(DNS_SUBDOMAIN).describe(description);

/** A key in a ConfigMap or Secret. */
export const dataKey = (description: string) =>
  z
    .string()
    .min(1)
    .max(253)
    .regex(/^[-._a-zA-Z0-9]+$/)
    .describe(description);

export const secretRef = (description: string) =>
  z
    .object({ name: objectName("Name of a Secret in the MirrorJob's namespace.") })
    .strict()
    .describe(description);

/**
 * Versions as oc-mirror reads them (Masterminds semver, which tolerates a leading `v`
 * and a missing minor or patch): `4.19.7`, `v1.2`, `4`, `1.0.0-rc.1+build`.
 */
export const SEMVER_PATTERN =
  "^v?[0-9]+(\\.[0-9]+)?(\\.[0-9]+)?(-[0-9A-Za-z-]+(\\.[0-9A-Za-z-]+)*)?(\\+[0-9A-Za-z-]+(\\.[0-9A-Za-z-]+)*)?$";

export const version = (description: string) =>
  pattern(z.string().min(1).max(64), SEMVER_PATTERN, "must be a semantic version such as 4.19.7").describe(
    description,
  );

const LABEL = "[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?";
/** Host with optional port: `quay.io`, `registry.example.com:8443`, `mirror:5000`. */
export const HOST = `${LABEL}(\\.${LABEL})*(:${PORT_PATTERN})?`;
/** A host that container tools read as a registry: it has a dot or a port, or is `localhost`. */
const REGISTRY_HOST = `((localhost|${LABEL}(\\.${LABEL})+)(:${PORT_PATTERN})?|${LABEL}:${PORT_PATTERN})`;
/** Repository path component as the container image reference grammar defines it. */
export const PATH_COMPONENT = "[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*";
const TAG = "[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}";

/** `host[:port]/path[:tag][@digest]` with an explicit registry and a tag or a digest. */
export const PINNED_IMAGE_PATTERN = `^${REGISTRY_HOST}(/${PATH_COMPONENT})+((:${TAG})(@${DIGEST_PATTERN})?|@${DIGEST_PATTERN})$`;

export const imageReference = (description: string) =>
  pattern(
    z.string().min(1).max(512),
    PINNED_IMAGE_PATTERN,
    "must be an image reference with a registry host and a tag or digest, e.g. quay.io/ns/image:1.0 or quay.io/ns/image@sha256:<hex>",
  ).describe(description);

/** `path[/path...]` without tag or digest, as oc-mirror's targetCatalog/targetRepo. */
export const TARGET_PATH_PATTERN = `^${PATH_COMPONENT}(/${PATH_COMPONENT})*$`;

export const targetPath = (description: string) =>
  pattern(
    z.string().min(1).max(255),
    TARGET_PATH_PATTERN,
    "must be one or more lower-case path components separated by /, without tag or digest",
  ).describe(description);

export const targetTag = (description: string) =>
  pattern(
    z.string().min(1).max(128),
    `^${TAG}$`,
    "must be a valid image tag (letters, digits, _, . and -)",
  ).describe(description);
