/**
 * Long-lived registry clients for a set of registries, with credentials looked up
 * per repository in a dockerconfigjson (so `host/team-a` and `host/team-b` keys with
 * different credentials get different clients, as containers/image would use them).
 * One client, hence one connection pool, per registry and credentials.
 */
import { RegistryClient, type RegistryClientOptions } from "./client.ts";
import { credentialsFor, parseDockerConfig, type Credentials, type DockerConfig } from "./credentials.ts";

export type SharedClientOptions = Omit<RegistryClientOptions, "registry" | "credentials">;

export class RegistryClients {
  private readonly config: DockerConfig | undefined;
  private readonly options: SharedClientOptions;
  private readonly clients = new Map<string, RegistryClient>();
  /** `host/repository` -> client, so the credential lookup runs once per repository. */
  private readonly byRepository = new Map<string, RegistryClient>();

  /**
   * @param dockerConfig a dockerconfigjson (text, bytes or parsed JSON; validated here, a
   *   DockerConfigError names a malformed entry), or undefined for anonymous access.
   */
  constructor(dockerConfig: unknown, options: SharedClientOptions = {}) {
    this.config = dockerConfig === undefined ? undefined : parseDockerConfig(dockerConfig);
    this.options = options;
  }

  /** The client for a repository of a registry (a ClientSource for verifyImages). */
  readonly clientFor = (registry: string, repository: string): RegistryClient => {
    const path = `${registry}/${repository}`;
    const known = this.byRepository.get(path);
    if (known !== undefined) return known;
    const credentials: Credentials | undefined =
      this.config === undefined ? undefined : credentialsFor(this.config, path);
    const key =
      credentials === undefined ? registry : `${registry}\n${credentials.username}\n${credentials.password}`;
    let client = this.clients.get(key);
    if (client === undefined) {
      client = new RegistryClient({
        ...this.options,
        registry,
        ...(credentials !== undefined && { credentials }),
      });
      this.clients.set(key, client);
    }
    this.byRepository.set(path, client);
    return client;
  };

  async close(): Promise<void> {
    const all = [...this.clients.values()];
    this.clients.clear();
    this.byRepository.clear();
    await Promise.all(all.map((c) => c.close()));
  }
}
