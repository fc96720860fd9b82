// GET /events: Docker 1.0's event object, with the keys today's clients read.

export interface EventActor {
  ID: string;
  Attributes: Record<string, string>;
}

/**
 * One event. `status`, `id`, `from`, `time` are Docker 1.0's; `Type`,
 * `Action`, `Actor` and `timeNano` are what today's docker CLI reads (the
 * exit code of `docker run` comes only from Actor.Attributes.exitCode).
 */
export interface EventMessage {
  status: string;
  id: string;
  from?: string;
  time: number;
  Type: string;
  Action: string;
  Actor: EventActor;
  timeNano: number;
}
