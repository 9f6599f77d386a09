"""The course's shared code. Each module is one concern; each helper names its lesson.

    config         quick/full mode, data folders               (lesson 01)
    device         pick cuda -> mps -> cpu, seed; torchrun     (lessons 01, 09)
    check          exercise checks, pitfall cells              (lesson 01)
    display        progress bars, widgets for saved notebooks  (lessons 02-04)
    data           datasets, offline mirror, DeviceLoader      (lesson 03)
    train          fit, evaluate, predict, checkpoints         (lessons 03-09)
    plot           live curves and the lessons' figures        (lessons 02-07)
    log            TensorBoard and visdom, one interface       (lesson 04)
    visdom_server  an offline visdom server on 127.0.0.1       (lesson 04)
    models         MLP, LeNet-5 ... ResNet, MobileNet, sizes   (lessons 04-07)
    images         your own image Datasets, three label layouts (lesson 08)
    exercises      the lessons' exercise checks, one module each (lessons 01-09)
    doctor         what is wrong with a set-up, and the fix    (bash course.sh doctor)
"""
from .config import by_mode, data_root, is_quick
from .device import get_device, seed_everything, setup

__all__ = ["by_mode", "data_root", "get_device", "is_quick", "seed_everything", "setup"]
