/**
 * The shared sender contract every destination passes (in the spirit of
 * Alertmanager's notify/test): one case per destination type in
 * test/contract/<type>.ts, exporting `contractCase`. The table in
 * test/unit/destination-contract.test.ts runs each case against the
 * destination's local fake, over a real socket.
 */
export interface DestinationContractCase {
  /** The destination type, as in the config (`pagerduty`). */
  readonly type: string;
  /** false for destinations that do not speak HTTP (console, file): the HTTP rows are skipped. */
  readonly http: boolean;
  /** Whether a RESOLVED Issue closes what the FIRING one opened (PagerDuty, Opsgenie, Jira), or is just another message. */
  readonly resolves: boolean;
  /** Starts a fresh fake of the destination's API. */
  start(): Promise<ContractFake>;
}

export interface ContractFake {
  /** Raw config params (before validation) that point the destination at this fake. */
  readonly params: Record<string, unknown>;
  /** Values that must never appear in an error message, hint or log line (keys, tokens, webhook URLs or their secret path). */
  readonly secrets: readonly string[];
  /** The next `count` (default 1) requests get this HTTP status (with Retry-After seconds when given). */
  failNext(status: number, opts?: { retryAfterSeconds?: number; count?: number }): void;
  /** The next request is never answered (until close). */
  hangNext(): void;
  /**
   * What the fake holds for an Issue fingerprint, in arrival order:
   * "open" (a new incident/message), "update" (a repeat, comment or edit), "resolve".
   */
  received(fingerprint: string): readonly ("open" | "update" | "resolve")[];
  /** Requests the fake answered with a 2xx so far (all fingerprints). */
  accepted(): number;
  close(): Promise<void>;
}
