import { describe, expect, it } from "vitest";
import { MAX_FILE_BYTES, MAX_OBJECTS, parseClusterResources } from "./cluster-resources.ts";

const ANNOTATIONS = `  annotations:
    createdAt: Wednesday, 19-Mar-25 08:20:23 UTC
    createdBy: oc-mirror v2
    oc-mirror_version: 4.20.0-202507081733.p0.gb5b1d2b.assembly.stream.el9-b5b1d2b
`;

// As clusterresources.go writes them (sigs.k8s.io/yaml: sorted keys, "---" before each document).
const IDMS = `---
apiVersion: config.openshift.io/v1
kind: ImageDigestMirrorSet
metadata:
${ANNOTATIONS}  name: idms-release-0
spec:
  imageDigestMirrors:
  - mirrors:
    - reg:5000/mirror/openshift/release
    source: quay.io/openshift-release-dev/ocp-v4.0-art-dev
  - mirrors:
    - reg:5000/mirror/openshift/release-images
    source: quay.io/openshift-release-dev/ocp-release
---
apiVersion: config.openshift.io/v1
kind: ImageDigestMirrorSet
metadata:
${ANNOTATIONS}  name: idms-operator-0
spec:
  imageDigestMirrors:
  - mirrors:
    - reg:5000/mirror/rhacm2
    source: registry.redhat.io/rhacm2
`;

const ITMS = `---
apiVersion: config.openshift.io/v1
kind: ImageTagMirrorSet
metadata:
${ANNOTATIONS}  name: itms-generic-0
spec:
  imageTagMirrors:
  - mirrors:
    - reg:5000/mirror/ubi9
    source: registry.redhat.io/ubi9
`;

const CS = `apiVersion: operators.coreos.com/v1alpha1
kind: CatalogSource
metadata:
${ANNOTATIONS}  name: cs-redhat-operator-index-v4-19
  namespace: openshift-marketplace
spec:
  image: reg:5000/mirror/redhat/redhat-operator-index:v4.19
  sourceType: grpc
status: {}
`;

const CC = `apiVersion: olm.operatorframework.io/v1
kind: ClusterCatalog
metadata:
${ANNOTATIONS}  name: cc-redhat-operator-index-v4-19
spec:
  priority: 0
  source:
    image:
      ref: reg:5000/mirror/redhat/redhat-operator-index:v4.19
    type: Image
`;

const OSUS = `apiVersion: updateservice.operator.openshift.io/v1
kind: UpdateService
metadata:
${ANNOTATIONS}  name: update-service-oc-mirror
  namespace: openshift-update-service
spec:
  graphDataImage: reg:5000/mirror/openshift/graph-image:latest
  releases: reg:5000/mirror/openshift/release-images
  replicas: 2
status: {}
`;

const SIGNATURES = {
  kind: "ConfigMap",
  apiVersion: "v1",
  metadata: {
    name: "mirrored-release-signatures",
    namespace: "openshift-config-managed",
    labels: { "release.openshift.io/verification-signatures": "" },
  },
  binaryData: { "sha256-3f1c0b4c3d2e1f0a9b8c7d6e5f4a3b2c3f1c0b4c3d2e1f0a9b8c7d6e5f4a3b2c-1": "b3dvLXNpZw==" },
};
const SIG_YAML = `apiVersion: v1
binaryData:
  sha256-3f1c0b4c3d2e1f0a9b8c7d6e5f4a3b2c3f1c0b4c3d2e1f0a9b8c7d6e5f4a3b2c-1: b3dvLXNpZw==
kind: ConfigMap
metadata:
  labels:
    release.openshift.io/verification-signatures: ""
  name: mirrored-release-signatures
  namespace: openshift-config-managed
`;

const ALL = [
  { name: "itms-oc-mirror.yaml", content: ITMS },
  { name: "idms-oc-mirror.yaml", content: IDMS },
  { name: "cs-redhat-operator-index-v4-19.yaml", content: CS },
  { name: "cc-redhat-operator-index-v4-19.yaml", content: CC },
  { name: "updateService.yaml", content: OSUS },
  { name: "signature-configmap.json", content: JSON.stringify(SIGNATURES) },
  { name: "signature-configmap.yaml", content: SIG_YAML },
];

describe("parseClusterResources", () => {
  it("reads every generated file into objects, in file-name order", () => {
    const { objects, errors } = parseClusterResources(ALL);
    expect(errors).toEqual([]);
    expect(objects.map((o) => [o.file, o.kind, o.name, o.namespace])).toEqual([
      ["cc-redhat-operator-index-v4-19.yaml", "ClusterCatalog", "cc-redhat-operator-index-v4-19", undefined],
      [
        "cs-redhat-operator-index-v4-19.yaml",
        "CatalogSource",
        "cs-redhat-operator-index-v4-19",
        "openshift-marketplace",
      ],
      ["idms-oc-mirror.yaml", "ImageDigestMirrorSet", "idms-release-0", undefined],
      ["idms-oc-mirror.yaml", "ImageDigestMirrorSet", "idms-operator-0", undefined],
      ["itms-oc-mirror.yaml", "ImageTagMirrorSet", "itms-generic-0", undefined],
      ["signature-configmap.json", "ConfigMap", "mirrored-release-signatures", "openshift-config-managed"],
      ["updateService.yaml", "UpdateService", "update-service-oc-mirror", "openshift-update-service"],
    ]);
    const idms = objects[2]?.object as { spec: { imageDigestMirrors: unknown[] } };
    expect(idms.spec.imageDigestMirrors).toHaveLength(2);
    expect(objects[0]?.apiVersion).toBe("olm.operatorframework.io/v1");
  });

  it("reads the signature ConfigMap once, from YAML when there is no JSON", () => {
    const { objects, errors } = parseClusterResources([
      { name: "signature-configmap.yaml", content: SIG_YAML },
    ]);
    expect(errors).toEqual([]);
    expect(objects).toHaveLength(1);
    expect(objects[0]?.file).toBe("signature-configmap.yaml");
  });

  it("skips empty documents and reports broken ones by file and document", () => {
    const { objects, errors } = parseClusterResources([
      { name: "idms-oc-mirror.yaml", content: `---\n${IDMS}---\n` },
      { name: "itms-oc-mirror.yaml", content: "---\nkind: [unclosed\n" },
      {
        name: "cs-x-1.yaml",
        content: "apiVersion: operators.coreos.com/v1alpha1\nkind: CatalogSource\nmetadata: {}\n",
      },
      { name: "cc-x-1.yaml", content: "- a list\n" },
      { name: "updateService.yaml", content: "kind: UpdateService\nmetadata: {name: x}\n" },
      { name: "signature-configmap.json", content: "{not json" },
    ]);
    expect(objects.map((o) => o.name)).toEqual(["idms-release-0", "idms-operator-0"]);
    expect(errors).toEqual([
      "cc-x-1.yaml: expected an object, got a list",
      "cs-x-1.yaml: metadata.name is missing",
      expect.stringMatching(/^itms-oc-mirror\.yaml \(document 1\): invalid YAML/),
      expect.stringMatching(/^signature-configmap\.json: invalid JSON/),
      "updateService.yaml: apiVersion is missing",
    ]);
  });

  it("refuses a kind the file name does not promise, unknown files and duplicates", () => {
    const { objects, errors } = parseClusterResources([
      { name: "cs-evil-1.yaml", content: CC.replace("cc-redhat", "cc-evil") },
      { name: "notes.txt", content: "hello" },
      { name: "cs-redhat-operator-index-v4-19.yaml", content: CS },
      { name: "cs-redhat-operator-index-copy.yaml", content: CS },
    ]);
    expect(objects).toHaveLength(1);
    expect(errors).toEqual([
      "cs-evil-1.yaml: holds a ClusterCatalog where oc-mirror writes a CatalogSource",
      "cs-redhat-operator-index-v4-19.yaml: CatalogSource cs-redhat-operator-index-v4-19 is also defined in cs-redhat-operator-index-copy.yaml; ignored",
      "notes.txt: not a file oc-mirror generates; ignored",
    ]);
  });

  it("bounds file size, object count and YAML aliases", () => {
    const big = parseClusterResources([
      { name: "cs-big-1.yaml", content: `# ${"x".repeat(MAX_FILE_BYTES)}\n${CS}` },
    ]);
    expect(big.objects).toEqual([]);
    expect(big.errors[0]).toMatch(/is more than the 5242880 accepted/);

    const many = Array.from({ length: MAX_OBJECTS + 5 }, (_, i) =>
      IDMS.split("---\n")[1]?.replace("idms-release-0", `idms-release-${i}`),
    );
    const counted = parseClusterResources([
      { name: "idms-oc-mirror.yaml", content: `---\n${many.join("---\n")}` },
    ]);
    expect(counted.objects).toHaveLength(MAX_OBJECTS);
    expect(counted.errors).toEqual([expect.stringContaining(`more than ${MAX_OBJECTS} objects`)]);

    const laughs = [
      "apiVersion: v1",
      "kind: UpdateService",
      "metadata: {name: x}",
      "a: &a [x, x, x, x, x, x, x, x]",
      ...Array.from(
        { length: 20 },
        (_, i) => `b${i}: &b${i} [*${i === 0 ? "a" : `b${i - 1}`}, *${i === 0 ? "a" : `b${i - 1}`}]`,
      ),
    ].join("\n");
    const bomb = parseClusterResources([{ name: "updateService.yaml", content: laughs }]);
    expect(bomb.objects).toEqual([]);
    expect(bomb.errors[0]).toMatch(/^updateService\.yaml \(document 1\): .*alias/i);
  });
});
