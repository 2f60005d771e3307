// Which of my alerts ring, and when they ring again: the phone page's ring policy.
//
//   const ringer = new Ringer({ repeatS: 15 });
//   for (const { call, why, urgent } of ringer.due(calls, isRingingForMe, Date.now())) ring(call, urgent);
//
// A call rings for me while it is open, I was alerted for it in its current round (the press,
// or its re-opening), I have not said "Not me", and I am on the floor. That is decided by the
// call's state each time, not by how old the alert was when the page first saw it: a page that
// opens, or comes back from a lost connection, rings for every alert still waiting for me.
//
// It rings at once when it starts ringing, again every `repeatS` until it stops, and at once
// with the urgent pattern on a reminder press (the shopper pressed again), when it turns
// overdue, and when I am alerted for it anew (a re-opened call). Every repeat of an overdue or
// reminded call is urgent too.

// Two patterns, told apart by ear and by hand. Tones are [Hz, ms]; volume 0-1 of full scale.
export const PATTERNS = {
  // Two rising tones and a short buzz: "a call for you".
  alert: { tones: [[880, 180], [1175, 180]], gap_ms: 70, volume: 0.35, vibrate: [300, 150, 300, 150, 600] },
  // Five alternating high tones, twice as loud, and long buzzes: "overdue, or pressed again".
  urgent: { tones: [[1319, 130], [988, 130], [1319, 130], [988, 130], [1568, 320]], gap_ms: 40, volume: 0.8,
            vibrate: [700, 120, 700, 120, 700, 120, 1400] },
};

export class Ringer {
  constructor({ repeatS = 15 } = {}) {
    this.repeatS = repeatS;
    this.state = new Map();  // call id → { next (ms), reminders, overdue, round }
  }

  // The calls to ring now: [{ call, why: "new"|"again"|"reminder"|"overdue"|"repeat", urgent }],
  // and forgets the calls that stopped ringing (see stopped()). `mine(call)` says whether the
  // call rings for me; `round(call)` names my current alert; `now` in ms.
  due(calls, mine, round, now) {
    const out = [];
    const keep = new Set();
    for (const c of calls) {
      if (!mine(c)) continue;
      keep.add(c.id);
      const st = this.state.get(c.id);
      const key = round(c);
      let why = null;
      if (!st) why = "new";
      else if (c.reminders > st.reminders) why = "reminder";
      else if (c.overdue && !st.overdue) why = "overdue";
      else if (key !== st.round) why = "again";
      else if (now >= st.next) why = "repeat";
      if (why) {
        const urgent = c.overdue || c.reminders > 0;
        out.push({ call: c, why, urgent });
        this.state.set(c.id, { next: now + this.repeatS * 1000, reminders: c.reminders, overdue: c.overdue, round: key });
      }
    }
    this.stopped = [...this.state.keys()].filter((id) => !keep.has(id));
    for (const id of this.stopped) this.state.delete(id);
    return out;
  }

  isRinging(id) { return this.state.has(id); }
}
