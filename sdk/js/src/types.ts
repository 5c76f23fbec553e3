/** Shapes of the server's payloads the SDK hands to pages (docs/protocol.md). */

export interface Participant {
  participant_id: number;
  /** customer | agent | supervisor | guest */
  role: string;
  name: string;
  joined_at?: string;
  left_at?: string | null;
}

/** The call summary (`hello.call`, `call.connected.call`). */
export interface CallSummary {
  call_id: string;
  number: string;
  state: string;
  business: { code: string; name: string } | null;
  customer_name?: string;
  agent_employee_no?: string;
  /** The name of the agent who serves the call (changes with a transfer). */
  agent_name?: string;
  connected_at?: string | null;
  participants?: Participant[];
  ice_servers?: RTCIceServer[];
  media?: Record<string, unknown>;
  media_epoch?: number;
  media_ready?: boolean;
  crypto?: { suite: "gm" | "intl"; public_key: string; key_id: string };
  [field: string]: unknown;
}

/** A business transaction as the customer's page may see it (masked values only). */
export interface Transaction {
  id: string;
  call_id: string;
  scenario: string;
  name: string;
  /** draft → identity_verified → customer_confirmed → submitted → completed | failed, or cancelled */
  state: string;
  state_label: string;
  summary: { name: string; label: string; value: string }[];
  customer_action: "show_id" | "read_confirm" | "enter_pin" | "done" | "";
  principal_id: number | null;
  authorized: boolean;
  /** The core's refusal or result code; pages show their own words for it. */
  result_code: string;
  /** The core's own text, for developers (never shown to people). */
  result_message: string;
  /** Wrong PINs the core still accepts before it locks the account (null: not said). */
  tries_left?: number | null;
  /** The PIN entry's round: a new one (a refusal, the agent asking again) opens a new entry. */
  pin_round?: number;
  /** The core accepted the old PIN in this round: the new PIN is asked for. */
  pin_verified?: boolean;
  /** A completed transaction's receipt: issued, pending (being made), failed (retried). */
  receipt_state?: "issued" | "pending" | "failed" | "";
  core_reference: string;
  receipt: boolean;
  updated_at: string;
  confirmation?: string;
  needs_signature?: boolean;
  pin_fields?: string[];
  pin_key?: { suite: "gm" | "intl"; key_id: string; public_key: string };
  [field: string]: unknown;
}

export interface ChatSender {
  participant_id: number;
  role: string;
  name: string;
}

/** A chat message (`chat.message`, or an entry of the history), opened if it came encrypted. */
export interface ChatMessage {
  message_id: number;
  client_id: string;
  call_id: string;
  sender: ChatSender;
  text: string;
  sent_at: string;
  state: "sent" | "delivered" | "read";
}

/** A delivery receipt (`chat.state`). */
export interface ChatState {
  message_id: number;
  client_id: string;
  state: "sent" | "delivered" | "read";
}
