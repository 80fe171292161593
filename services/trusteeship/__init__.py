"""Agricultural trusteeship: orders, machinery teams, dispatch, acceptance, settlement, subsidies.

Design notes (the rules and numbers come from the domain research on 农业生产托管):

* **Aggregates.** ``Provider`` (directory entry, blacklist, price lists per season), ``Order``
  (the order and its work tasks: order × stage × parcel, × pass for crop protection, so
  starting work and cancelling are decided by one stream), ``Team``/``Machine``/``Operator``
  (each a bookable schedule), ``AcceptanceLedger`` per parcel × stage slot × season,
  ``SubsidyLedger`` per parcel-season, per large operator and year, and per district programme
  and season, ``SubsidyClaim``, ``DispatchProposal``, ``VillageSite``.
* **No double booking.** A dispatch loads the order, the team, every machine and every operator
  it books and appends to all of them in one transaction; optimistic concurrency on each stream
  makes concurrent overlapping dispatches retry, see the winner's window and fail with 422
  (or 409 once retries are exhausted). Windows in different villages must be the configured
  travel buffer apart. A manual dispatch's window must also be long enough: window hours × the
  suited machines' mu per day ÷ the working day's hours (``work_day_end_hour`` −
  ``work_day_start_hour``) ≥ the task's remaining area, else 422 naming ``ends_at``.
* **DispatchRejected** is recorded on the task's order stream by automatic dispatch, when the
  desk confirms a proposal, for every task it could not place (with the reason); the task is
  then unplaced. A manual dispatch refused by a rule (double booking, travel buffer, licence,
  capacity, order not signed) appends none of its own events and is answered 422 naming the
  field; its refusal is then recorded as a fact of its own, in a transaction of its own:
  ``DispatchRejected`` with ``manual`` true, ``reason`` (the answer's message) and ``field``
  (the field it named). That record leaves the task and every schedule as they were. Malformed
  input (400/422 from the request schema), an unknown task (404), a token out of scope (403) and
  a 409 after exhausted retries record nothing.
* **Places.** Team bases carry coordinates; villages' field locations are registered in this
  service (``POST /village-sites``) and give the travel distances of automatic dispatch. A task
  in a village without a site is left unplaced with ``no_location``.
* **Acceptance.** Accepted area per parcel × stage slot × season is an aggregate, so two
  providers accepting the same parcel race on one stream: the total never exceeds the parcel's
  area, and each task's accepted area never exceeds its contracted area. Ledgers (acceptance,
  subsidy) are opened with ``uow.find_or_create``: when two commands start one at once, the
  loser's append conflicts, it is retried and finds the winner's ledger, so both succeed.
* **Subsidies.** A claim (one accepted task) is checked at claim time against: provider listed
  in the directory and not blacklisted on the claim day; ≤ share of the fee (30 %, 40 % in weak
  villages); Σ over the season's stages of the parcel ≤ fen per mu (100 / 130 yuan) × served
  area; for customers that are not households (large operators) ≤ the yearly cap (10 万元).
  Approval keeps small farmers' share of the district season's approved funds ≥ 80 %.
  Converted area = 0.36 耕 + 0.27 种 + 0.1 防 + 0.27 收 per accepted mu.
"""
