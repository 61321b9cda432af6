"""skorch callbacks of ensemble training: the epoch loss, the cosine schedule, early stopping member
by member."""

import math

import numpy as np
from skorch.callbacks import Callback

from ._loss import _ratio


class _StopTraining(KeyboardInterrupt):
    """Raised by our callbacks to end training; a real Ctrl-C is a plain KeyboardInterrupt."""


class EpochLoss(Callback):
    """Records ``train_loss``, the epoch's mean batch loss (weighted by batch size), in the
    history, as skorch's default does, from a running sum instead of a history scan."""

    def on_epoch_begin(self, net, **kwargs):
        self.total_, self.count_ = 0.0, 0

    def on_batch_end(self, net, batch=None, training=False, loss=None, **kwargs):
        if training:
            size = len(batch[1])  # the batch's targets
            self.total_ += loss.item() * size
            self.count_ += size

    def on_epoch_end(self, net, **kwargs):
        if self.count_:
            net.history.record("train_loss", self.total_ / self.count_)


class CosineDecay(Callback):
    """The learning rate follows half a cosine from its initial value to 0 over ``total_steps``
    optimizer steps (Loshchilov & Hutter's schedule without restarts): large steps first, then
    small ones that settle each member instead of leaving it where the last large step threw it."""

    def __init__(self, total_steps):
        self.total_steps = total_steps

    def on_train_begin(self, net, **kwargs):
        self.base_lrs_ = [group["lr"] for group in net.optimizer_.param_groups]
        self.step_ = 0

    def on_batch_end(self, net, training, **kwargs):
        if not training:
            return
        self.step_ += 1
        factor = 0.5 * (1.0 + math.cos(math.pi * min(self.step_ / self.total_steps, 1.0)))
        for group, base in zip(net.optimizer_.param_groups, self.base_lrs_, strict=True):
            group["lr"] = base * factor

    def on_train_end(self, net, **kwargs):
        for group, base in zip(net.optimizer_.param_groups, self.base_lrs_, strict=True):
            group["lr"] = base  # a later partial_fit of the net starts from the set rate


class MemberEarlyStopping(Callback):
    """Early stopping on the out-of-bag loss, member by member.

    Member ``k`` stops improving when its own out-of-bag loss has not dropped by a relative
    ``threshold`` for ``patience`` epochs; from then on its best weights are kept aside and no
    later epoch counts for it. Training ends when every member has stopped, and each member gets
    its best weights back. Because each member is judged on its own, a member stops at the same
    epoch, with the same weights, whatever members are trained with it.
    """

    def __init__(self, patience, threshold=1e-4):
        self.patience = patience
        self.threshold = threshold

    def on_train_begin(self, net, **kwargs):
        n_members = net.module_.n_members
        self.best_ = np.full(n_members, np.inf)
        self.misses_ = np.zeros(n_members, dtype=int)
        self.best_epochs_ = np.zeros(n_members, dtype=int)
        self.best_states_ = [None] * n_members

    def on_epoch_begin(self, net, **kwargs):
        net.member_valid_sums_ = None

    def on_epoch_end(self, net, **kwargs):
        totals, weights = net.member_valid_sums_
        losses = _ratio(totals, weights).cpu().numpy().astype(float)
        # A member that drew every row has no out-of-bag loss to judge (it would read 0 at every
        # epoch and "stop" at the first): it never stops early and trains the whole budget.
        judged = weights.cpu().numpy() > 0
        net.history.record("member_valid_loss", np.where(judged, losses, np.nan).tolist())
        epoch = len(net.history)
        trainable = net.module_.trainable
        for k, loss in enumerate(losses):
            if self.misses_[k] >= self.patience or not judged[k]:
                continue  # stopped (later epochs do not count for it), or nothing to judge
            best = self.best_[k]
            if not np.isfinite(best) or loss < best - self.threshold * abs(best):
                self.best_[k], self.best_epochs_[k], self.misses_[k] = loss, epoch, 0
                self.best_states_[k] = trainable.member_state(k)
            else:
                self.misses_[k] += 1
        if (self.misses_ >= self.patience).all():
            if net.verbose:
                print(f"Every member stopped improving for {self.patience} epochs "
                      f"(best epochs {self.best_epochs_.min()}-{self.best_epochs_.max()}).")
            raise _StopTraining

    def on_train_end(self, net, **kwargs):
        trainable = net.module_.trainable
        for k, state in enumerate(self.best_states_):
            if state is not None:
                trainable.load_member_state(k, state)
