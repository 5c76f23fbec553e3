/**
 * The customer's side of a business transaction (docs/protocol.md "Business transactions"):
 * what the agent asks for now becomes a prompt the page shows, and the answer goes back with the
 * encryption done here: the PIN is entered into a PinEntry (digits kept in this object's array
 * only, never in the DOM or storage) and sealed to the PIN gateway's key before it leaves.
 */
import type { Collab } from "./collab.js";
import { Emitter, type EventSink } from "./emitter.js";
import { RemoteBankError, asError } from "./errors.js";
import { sealPin, type PinEnvelope } from "./pin.js";
import { str, type Message, type SignalClient } from "./signal.js";
import type { Transaction } from "./types.js";

export const PIN_LENGTH = 6;

/** A step of a PIN entry: a field the transaction asks for ("old_pin", "new_pin"), or "repeat"
 * (the new PIN again) after new_pin. */
export type PinStep = string;

export interface PinState {
  step: PinStep;
  /** Index of `step` in `steps`. */
  index: number;
  steps: PinStep[];
  /** Digits pressed in this step (never the digits themselves). */
  filled: number;
  length: number;
  /** The keypad's digits in a fresh random order (for the 10 digit keys). */
  layout: string[];
  /** The repeated new PIN did not match: entry went back to new_pin. */
  mismatch: boolean;
  /** Sealing and sending. */
  submitting: boolean;
  /** The old PIN is being checked by the bank before the new one is asked for. */
  checking: boolean;
}

/** A fresh random order of the ten digits (crypto.getRandomValues), for a shuffled keypad. */
export function shuffledDigits(): string[] {
  const digits = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
  const random = new Uint32Array(digits.length);
  crypto.getRandomValues(random);
  for (let i = digits.length - 1; i > 0; i--) {
    const j = random[i]! % (i + 1);
    [digits[i], digits[j]] = [digits[j]!, digits[i]!];
  }
  return digits;
}

/** Expand the transaction's PIN fields into entry steps (a new PIN is typed twice). */
export function pinSteps(fields: string[]): PinStep[] {
  const steps: PinStep[] = [];
  for (const f of fields) {
    steps.push(f);
    if (f === "new_pin") steps.push("repeat");
  }
  return steps;
}

/** Checks the old PIN with the bank: true when accepted (the entry goes on to the new PIN);
 * false when refused (a new entry replaces this one); throws when it could not be checked. */
export type PinVerifier = (oldPin: string) => Promise<boolean>;

/**
 * One PIN entry. press()/back()/clear() from the page's keypad; when the last step is full the
 * PINs are sealed and sent, and `submit` resolves with the server's transaction. With a
 * `verify`, a full old PIN is checked by the bank before the new PIN is asked for.
 */
export class PinEntry extends Emitter<{ change: PinState }> {
  readonly steps: PinStep[];
  readonly length = PIN_LENGTH;
  index = 0;
  layout: string[] = shuffledDigits();
  mismatch = false;
  submitting = false;
  checking = false;
  closed = false;
  #digits: string[] = [];
  #got = new Map<string, string>();
  readonly #submit: (pins: Map<string, string>) => Promise<void>;
  readonly #verify: PinVerifier | null;

  constructor(
    fields: string[],
    submit: (pins: Map<string, string>) => Promise<void>,
    verify: PinVerifier | null = null,
  ) {
    super();
    this.steps = pinSteps(fields);
    this.#submit = submit;
    this.#verify = verify;
  }

  get step(): PinStep {
    return this.steps[this.index]!;
  }

  get state(): PinState {
    return {
      step: this.step,
      index: this.index,
      steps: this.steps.slice(),
      filled: this.#digits.length,
      length: this.length,
      layout: this.layout.slice(),
      mismatch: this.mismatch,
      submitting: this.submitting,
      checking: this.checking,
    };
  }

  #changed(): void {
    this.emit("change", this.state);
  }

  #wipe(): void {
    this.#digits.fill("0");
    this.#digits.length = 0;
  }

  press(digit: string): void {
    if (this.closed || this.submitting || this.checking || !/^[0-9]$/.test(digit)) return;
    if (this.#digits.length >= this.length) return;
    this.#digits.push(digit);
    if (this.#digits.length < this.length) {
      this.#changed();
      return;
    }
    const pin = this.#digits.join("");
    this.#wipe();
    this.layout = shuffledDigits();
    const step = this.step;
    if (step === "repeat") {
      if (pin !== this.#got.get("new_pin")) {
        this.#got.delete("new_pin");
        this.mismatch = true;
        this.index = this.steps.indexOf("new_pin");
        this.#changed();
        return;
      }
    } else {
      this.#got.set(step, pin);
    }
    this.mismatch = false;
    if (step === "old_pin" && this.#verify) {
      this.#check(this.#verify, pin);
      return;
    }
    this.#advance();
  }

  /** The old PIN goes to the bank now; the new PIN is asked for only once it is accepted. */
  #check(verify: PinVerifier, pin: string): void {
    this.checking = true;
    this.#changed();
    verify(pin).then(
      (accepted) => {
        if (this.closed) return;
        this.checking = false;
        if (accepted) this.#advance();
        else this.restart();
      },
      () => {
        if (!this.closed) this.restart();
      },
    );
  }

  #advance(): void {
    this.index += 1;
    if (this.index < this.steps.length) {
      this.#changed();
      return;
    }
    this.index = this.steps.length - 1;
    this.submitting = true;
    this.#changed();
    const pins = this.#got;
    this.#got = new Map();
    void this.#submit(pins).finally(() => pins.clear());
  }

  back(): void {
    if (this.closed || this.submitting || this.checking) return;
    this.#digits.pop();
    this.#changed();
  }

  /** Empty this step and shuffle the keys again. */
  clear(): void {
    if (this.closed || this.submitting || this.checking) return;
    this.#wipe();
    this.layout = shuffledDigits();
    this.#changed();
  }

  /** Start over at the first step (after a refusal). */
  restart(): void {
    this.#wipe();
    this.#got.clear();
    this.index = 0;
    this.mismatch = false;
    this.submitting = false;
    this.checking = false;
    this.layout = shuffledDigits();
    this.#changed();
  }

  close(): void {
    this.closed = true;
    this.#wipe();
    this.#got.clear();
  }
}

interface PromptBase {
  transaction: Transaction;
}

/** Show the ID card to the camera (the document check the agent does on the video). */
export interface ShowIdPrompt extends PromptBase {
  kind: "show_id";
}

/** Read `text` and agree (with a signature when `needsSignature`), or decline. */
export interface ConsentPrompt extends PromptBase {
  kind: "consent";
  text: string;
  needsSignature: boolean;
  /** `signature`: a PNG data URL of the signature (e.g. canvas.toDataURL()). */
  accept(signature?: string | null): Promise<Transaction>;
  decline(): Promise<Transaction>;
}

/** Why a PIN entry is asked for again: the core's refusal (`wrong_pin` with `triesLeft`,
 * `trivial_pin`, ...). `message` is the core's own text, for developers: pages show their
 * words for `code`. */
export interface PinRetry {
  code: string;
  message: string;
  /** Wrong PINs the core still accepts before it locks the account (null: not said). */
  triesLeft: number | null;
}

/** Enter the PIN(s) on a keypad bound to `entry`. */
export interface PinPrompt extends PromptBase {
  kind: "pin";
  entry: PinEntry;
  /** The previous try was refused (a wrong PIN, or the PIN system refused the envelope). */
  retry: PinRetry | null;
  /** The agent asked again (the same refusal may still be shown). */
  round: number;
}

/** The principal of an entrusted agency (a guest) authorizes the agent's scope. */
export interface AuthorizePrompt extends PromptBase {
  kind: "authorize";
  authorize(): Promise<Transaction>;
}

export type Prompt = ShowIdPrompt | ConsentPrompt | PinPrompt | AuthorizePrompt;

export interface BankingEvents {
  transaction: Transaction | null;
  prompt: Prompt | null;
  caption: { transactionId: string; index: number; count: number; text: string };
  /** Answering a prompt failed (e.g. the PIN system refused the envelope); the prompt stays. */
  promptError: RemoteBankError;
}

export class Banking {
  transaction: Transaction | null = null;
  prompt: Prompt | null = null;
  /** Every transaction seen in this call, by id (the end page's summary). */
  readonly transactions = new Map<string, Transaction>();
  role = "customer";
  participantId: number | null = null;
  #promptKey = "";
  readonly #client: SignalClient;
  readonly #events: EventSink<BankingEvents>;
  readonly #collab: Collab;

  constructor(client: SignalClient, events: EventSink<BankingEvents>, collab: Collab) {
    this.#client = client;
    this.#events = events;
    this.#collab = collab;
    client.on("banking.transaction", (evt) => this.update(evt.transaction as Transaction | null));
    client.on("banking.caption", (evt) =>
      this.#events.emit("caption", {
        transactionId: str(evt.transaction_id),
        index: Number(evt.index ?? 0),
        count: Number(evt.count ?? 0),
        text: str(evt.text),
      }),
    );
  }

  get pinOpen(): boolean {
    return this.prompt?.kind === "pin";
  }

  /** Ask the server for the call's transaction (after a (re)connect). */
  async refresh(): Promise<void> {
    try {
      const ack = await this.#client.request("banking.get", {});
      this.update(ack.transaction as Transaction | null);
    } catch {
      /* the next event brings it */
    }
  }

  reset(): void {
    this.#setPrompt(null, "");
    this.transaction = null;
    this.transactions.clear();
  }

  /** The call ended: no prompt any more; the transactions stay for the summary. */
  end(): void {
    this.#setPrompt(null, "");
  }

  update(tx: Transaction | null): void {
    this.transaction = tx;
    if (tx) this.transactions.set(tx.id, tx);
    this.#events.emit("transaction", tx);
    this.#render(tx);
  }

  #render(tx: Transaction | null): void {
    if (!tx) return this.#setPrompt(null, "");
    if (this.role === "guest") return this.#renderGuest(tx);
    const key = tx.id + "|" + tx.updated_at;
    if (tx.customer_action === "show_id") {
      return this.#setPrompt({ kind: "show_id", transaction: tx }, key + "|s");
    }
    if (tx.customer_action === "read_confirm") {
      return this.#setPrompt(
        {
          kind: "consent",
          transaction: tx,
          text: tx.confirmation || "",
          needsSignature: tx.needs_signature !== false,
          accept: (signature) => this.#confirm(tx, true, signature ?? null),
          decline: () => this.#confirm(tx, false, null),
        },
        key + "|c",
      );
    }
    if (tx.customer_action === "enter_pin") {
      // A new round (a refusal, the agent asking again) opens a new entry; anything else (a
      // refresh, the old PIN accepted) keeps the entry that is under way.
      const pinKey = tx.id + "|" + String(tx.pin_round ?? tx.updated_at) + "|p";
      if (this.prompt?.kind === "pin" && this.#promptKey === pinKey) return;
      return this.#openPin(tx, pinKey);
    }
    this.#setPrompt(null, "");
  }

  /** A guest sees prompts only as the principal of an entrusted agency. */
  #renderGuest(tx: Transaction): void {
    const principal = tx.principal_id !== null && tx.principal_id === this.participantId;
    const key = tx.id + "|" + tx.updated_at;
    if (principal && tx.state === "identity_verified" && !tx.authorized) {
      return this.#setPrompt({ kind: "authorize", transaction: tx, authorize: () => this.#authorize(tx) }, key + "|a");
    }
    if (tx.customer_action === "show_id" || (principal && tx.state === "draft")) {
      return this.#setPrompt({ kind: "show_id", transaction: tx }, key + "|s");
    }
    this.#setPrompt(null, "");
  }

  #setPrompt(prompt: Prompt | null, key: string): void {
    if (key === this.#promptKey && (key || this.prompt === null)) return;
    if (this.prompt?.kind === "pin") this.prompt.entry.close();
    this.prompt = prompt;
    this.#promptKey = key;
    this.#events.emit("prompt", prompt);
  }

  #openPin(tx: Transaction, key: string): void {
    // The PIN pad is never part of a screen share: the share stops before the pad exists.
    this.#collab.haltShare();
    const fields = tx.pin_fields || ["new_pin"];
    // The old PIN is checked by the bank before the new one is asked for.
    const verify = fields.includes("old_pin") ? (pin: string) => this.#verifyOld(tx, pin) : null;
    const entry: PinEntry = new PinEntry(
      fields,
      (pins): Promise<void> => this.#sendPins(tx, entry, pins),
      verify,
    );
    const retry = tx.result_code
      ? {
          code: tx.result_code,
          message: tx.result_message || "",
          triesLeft: typeof tx.tries_left === "number" ? tx.tries_left : null,
        }
      : null;
    this.#setPrompt({ kind: "pin", transaction: tx, entry, retry, round: tx.pin_round ?? 0 }, key);
  }

  async #verifyOld(tx: Transaction, pin: string): Promise<boolean> {
    try {
      const key = tx.pin_key;
      if (!key) throw new RemoteBankError("stale_pin_key", "no PIN key in the transaction");
      const sealed = await sealPin(pin, "old_pin", tx.id, key);
      const ack = await this.#client.request("banking.pin_verify", {
        transaction_id: tx.id,
        pins: { old_pin: sealed },
      });
      const current = ack.transaction as Transaction;
      this.update(current); // a refusal opens a new round: a new entry replaces this one
      return ack.verified === true;
    } catch (err) {
      this.#events.emit("promptError", asError(err));
      throw err;
    }
  }

  async #sendPins(tx: Transaction, entry: PinEntry, pins: Map<string, string>): Promise<void> {
    try {
      const key = tx.pin_key;
      if (!key) throw new RemoteBankError("stale_pin_key", "no PIN key in the transaction");
      const sealed: Record<string, PinEnvelope> = {};
      for (const field of tx.pin_fields || []) {
        const pin = pins.get(field);
        if (!pin) throw new RemoteBankError("pin_incomplete", field);
        sealed[field] = await sealPin(pin, field, tx.id, key);
      }
      pins.clear();
      const ack = await this.#client.request("banking.pin", { transaction_id: tx.id, pins: sealed });
      this.update(ack.transaction as Transaction);
    } catch (err) {
      this.#events.emit("promptError", asError(err));
      // Never strand the customer: the same entry starts over for another try.
      if (!entry.closed) entry.restart();
    }
  }

  async #confirm(tx: Transaction, accept: boolean, signature: string | null): Promise<Transaction> {
    if (!this.#current(tx, "consent")) throw new RemoteBankError("no_prompt", "not asked now");
    const fields: Record<string, unknown> = { transaction_id: tx.id, accept };
    if (accept) {
      if (!signature && tx.needs_signature !== false) {
        throw new RemoteBankError("signature_empty", "a signature is needed");
      }
      if (signature) fields.signature = signature;
    }
    return this.#answer(await this.#client.request("banking.confirm", fields));
  }

  async #authorize(tx: Transaction): Promise<Transaction> {
    if (!this.#current(tx, "authorize")) throw new RemoteBankError("no_prompt", "not asked now");
    return this.#answer(await this.#client.request("banking.authorize", { transaction_id: tx.id }));
  }

  #current(tx: Transaction, kind: Prompt["kind"]): boolean {
    return this.prompt?.kind === kind && this.prompt.transaction.id === tx.id;
  }

  #answer(ack: Message): Transaction {
    const tx = ack.transaction as Transaction;
    this.update(tx);
    return tx;
  }
}
