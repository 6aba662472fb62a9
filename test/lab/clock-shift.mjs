// Preload (node --import) that moves this process's clock forward by SPOT_RUNNER_LAB_CLOCK_SHIFT_MS:
// the lab's way to run a scheduled reap "later" without waiting. Only Date moves; timers do not.
const shift = Number(process.env.SPOT_RUNNER_LAB_CLOCK_SHIFT_MS || 0);
if (shift) {
  const RealDate = Date;
  class ShiftedDate extends RealDate {
    constructor(...args) {
      if (args.length === 0) super(RealDate.now() + shift);
      else super(...args);
    }
    static now() {
      return RealDate.now() + shift;
    }
  }
  globalThis.Date = ShiftedDate;
}
