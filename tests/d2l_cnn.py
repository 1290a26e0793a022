"""The book's convolutional networks (d2l.ai, chapters 7 and 8, PyTorch), written by hand as
the book writes them: the references the zoo's CNNs must equal. The book's constants that the
zoo scales to 8×8 digits (a padding, a divisor of the widths, the stem) are arguments here,
with the book's values as defaults; the structure is the book's, line for line."""

import torch
from torch import nn
from torch.nn import functional as F


def lenet(padding2=0, num_classes=10):
    return nn.Sequential(
        nn.LazyConv2d(6, kernel_size=5, padding=2), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.LazyConv2d(16, kernel_size=5, padding=padding2), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Flatten(),
        nn.LazyLinear(120), nn.Sigmoid(),
        nn.LazyLinear(84), nn.Sigmoid(),
        nn.LazyLinear(num_classes))  # fmt: skip


def bn_lenet(padding=0, num_classes=10):
    return nn.Sequential(
        nn.LazyConv2d(6, kernel_size=5, padding=padding), nn.LazyBatchNorm2d(),
        nn.Sigmoid(), nn.AvgPool2d(kernel_size=2, stride=2),
        nn.LazyConv2d(16, kernel_size=5, padding=padding), nn.LazyBatchNorm2d(),
        nn.Sigmoid(), nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Flatten(), nn.LazyLinear(120), nn.LazyBatchNorm1d(),
        nn.Sigmoid(), nn.LazyLinear(84), nn.LazyBatchNorm1d(),
        nn.Sigmoid(), nn.LazyLinear(num_classes))  # fmt: skip


def alexnet(div=1, stem=(11, 4, 1), pool_padding=0, num_classes=10):
    k, s, p, pp = *stem, pool_padding
    return nn.Sequential(
        nn.LazyConv2d(96 // div, kernel_size=k, stride=s, padding=p),
        nn.ReLU(), nn.MaxPool2d(kernel_size=3, stride=2, padding=pp),
        nn.LazyConv2d(256 // div, kernel_size=5, padding=2), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2, padding=pp),
        nn.LazyConv2d(384 // div, kernel_size=3, padding=1), nn.ReLU(),
        nn.LazyConv2d(384 // div, kernel_size=3, padding=1), nn.ReLU(),
        nn.LazyConv2d(256 // div, kernel_size=3, padding=1), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2, padding=pp), nn.Flatten(),
        nn.LazyLinear(4096 // div), nn.ReLU(), nn.Dropout(p=0.5),
        nn.LazyLinear(4096 // div), nn.ReLU(), nn.Dropout(p=0.5),
        nn.LazyLinear(num_classes))  # fmt: skip


def vgg_block(num_convs, out_channels):
    layers = []
    for _ in range(num_convs):
        layers.append(nn.LazyConv2d(out_channels, kernel_size=3, padding=1))
        layers.append(nn.ReLU())
    layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return nn.Sequential(*layers)


def vgg(arch=((1, 64), (1, 128), (2, 256), (2, 512), (2, 512)), fc=4096, num_classes=10):
    conv_blks = []
    for num_convs, out_channels in arch:
        conv_blks.append(vgg_block(num_convs, out_channels))
    return nn.Sequential(
        *conv_blks, nn.Flatten(),
        nn.LazyLinear(fc), nn.ReLU(), nn.Dropout(0.5),
        nn.LazyLinear(fc), nn.ReLU(), nn.Dropout(0.5),
        nn.LazyLinear(num_classes))  # fmt: skip


def nin_block(out_channels, kernel_size, strides, padding):
    return nn.Sequential(
        nn.LazyConv2d(out_channels, kernel_size, strides, padding), nn.ReLU(),
        nn.LazyConv2d(out_channels, kernel_size=1), nn.ReLU(),
        nn.LazyConv2d(out_channels, kernel_size=1), nn.ReLU())  # fmt: skip


def nin(div=1, stem=(11, 4, 0), pool_padding=0, num_classes=10):
    pp = pool_padding
    return nn.Sequential(
        nin_block(96 // div, kernel_size=stem[0], strides=stem[1], padding=stem[2]),
        nn.MaxPool2d(3, stride=2, padding=pp),
        nin_block(256 // div, kernel_size=5, strides=1, padding=2),
        nn.MaxPool2d(3, stride=2, padding=pp),
        nin_block(384 // div, kernel_size=3, strides=1, padding=1),
        nn.MaxPool2d(3, stride=2, padding=pp),
        nn.Dropout(0.5),
        nin_block(num_classes, kernel_size=3, strides=1, padding=1),
        nn.AdaptiveAvgPool2d((1, 1)),
        nn.Flatten())  # fmt: skip


class Inception(nn.Module):
    # c1--c4 are the number of output channels for each branch
    def __init__(self, c1, c2, c3, c4, div=1):
        super().__init__()
        c1, c2, c3, c4 = c1 // div, [c // div for c in c2], [c // div for c in c3], c4 // div
        # Branch 1
        self.b1_1 = nn.LazyConv2d(c1, kernel_size=1)
        # Branch 2
        self.b2_1 = nn.LazyConv2d(c2[0], kernel_size=1)
        self.b2_2 = nn.LazyConv2d(c2[1], kernel_size=3, padding=1)
        # Branch 3
        self.b3_1 = nn.LazyConv2d(c3[0], kernel_size=1)
        self.b3_2 = nn.LazyConv2d(c3[1], kernel_size=5, padding=2)
        # Branch 4
        self.b4_1 = nn.MaxPool2d(kernel_size=3, stride=1, padding=1)
        self.b4_2 = nn.LazyConv2d(c4, kernel_size=1)

    def forward(self, x):
        b1 = F.relu(self.b1_1(x))
        b2 = F.relu(self.b2_2(F.relu(self.b2_1(x))))
        b3 = F.relu(self.b3_2(F.relu(self.b3_1(x))))
        b4 = F.relu(self.b4_2(self.b4_1(x)))
        return torch.cat((b1, b2, b3, b4), dim=1)


def googlenet(div=1, stem=(7, 2, 3), num_classes=10):
    d = div
    b1 = nn.Sequential(
        nn.LazyConv2d(64 // d, kernel_size=stem[0], stride=stem[1], padding=stem[2]),
        nn.ReLU(), nn.MaxPool2d(kernel_size=3, stride=2, padding=1))  # fmt: skip
    b2 = nn.Sequential(
        nn.LazyConv2d(64 // d, kernel_size=1), nn.ReLU(),
        nn.LazyConv2d(192 // d, kernel_size=3, padding=1), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2, padding=1))  # fmt: skip
    b3 = nn.Sequential(Inception(64, (96, 128), (16, 32), 32, d),
                       Inception(128, (128, 192), (32, 96), 64, d),
                       nn.MaxPool2d(kernel_size=3, stride=2, padding=1))  # fmt: skip
    b4 = nn.Sequential(Inception(192, (96, 208), (16, 48), 64, d),
                       Inception(160, (112, 224), (24, 64), 64, d),
                       Inception(128, (128, 256), (24, 64), 64, d),
                       Inception(112, (144, 288), (32, 64), 64, d),
                       Inception(256, (160, 320), (32, 128), 128, d),
                       nn.MaxPool2d(kernel_size=3, stride=2, padding=1))  # fmt: skip
    b5 = nn.Sequential(Inception(256, (160, 320), (32, 128), 128, d),
                       Inception(384, (192, 384), (48, 128), 128, d),
                       nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten())  # fmt: skip
    return nn.Sequential(b1, b2, b3, b4, b5, nn.LazyLinear(num_classes))


class Residual(nn.Module):
    """The Residual block of ResNet models."""

    def __init__(self, num_channels, use_1x1conv=False, strides=1):
        super().__init__()
        self.conv1 = nn.LazyConv2d(num_channels, kernel_size=3, padding=1, stride=strides)
        self.conv2 = nn.LazyConv2d(num_channels, kernel_size=3, padding=1)
        if use_1x1conv:
            self.conv3 = nn.LazyConv2d(num_channels, kernel_size=1, stride=strides)
        else:
            self.conv3 = None
        self.bn1 = nn.LazyBatchNorm2d()
        self.bn2 = nn.LazyBatchNorm2d()

    def forward(self, X):
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.conv3:
            X = self.conv3(X)
        Y += X
        return F.relu(Y)


class ResNet(nn.Module):
    def b1(self, width, stem):
        return nn.Sequential(
            nn.LazyConv2d(width, kernel_size=stem[0], stride=stem[1], padding=stem[2]),
            nn.LazyBatchNorm2d(), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1))  # fmt: skip

    def block(self, num_residuals, num_channels, first_block=False):
        blk = []
        for i in range(num_residuals):
            if i == 0 and not first_block:
                blk.append(Residual(num_channels, use_1x1conv=True, strides=2))
            else:
                blk.append(Residual(num_channels))
        return nn.Sequential(*blk)

    def __init__(self, arch, num_classes=10, stem=(7, 2, 3)):
        super().__init__()
        self.net = nn.Sequential(self.b1(arch[0][1], stem))
        for i, b in enumerate(arch):
            self.net.add_module(f"b{i + 2}", self.block(*b, first_block=(i == 0)))
        self.net.add_module(
            "last",
            nn.Sequential(nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.LazyLinear(num_classes)),
        )


def resnet18(width=64, stem=(7, 2, 3), num_classes=10):
    arch = ((2, width), (2, 2 * width), (2, 4 * width), (2, 8 * width))
    return ResNet(arch, num_classes, stem).net


def conv_block(num_channels):
    return nn.Sequential(
        nn.LazyBatchNorm2d(), nn.ReLU(), nn.LazyConv2d(num_channels, kernel_size=3, padding=1)
    )


class DenseBlock(nn.Module):
    def __init__(self, num_convs, num_channels):
        super().__init__()
        layer = []
        for _ in range(num_convs):
            layer.append(conv_block(num_channels))
        self.net = nn.Sequential(*layer)

    def forward(self, X):
        for blk in self.net:
            Y = blk(X)
            # Concatenate input and output of each block along the channels
            X = torch.cat((X, Y), dim=1)
        return X


def transition_block(num_channels):
    return nn.Sequential(
        nn.LazyBatchNorm2d(), nn.ReLU(),
        nn.LazyConv2d(num_channels, kernel_size=1),
        nn.AvgPool2d(kernel_size=2, stride=2))  # fmt: skip


class DenseNet(nn.Module):
    def b1(self, num_channels, stem, pool):
        return nn.Sequential(
            nn.LazyConv2d(num_channels, kernel_size=stem[0], stride=stem[1], padding=stem[2]),
            nn.LazyBatchNorm2d(), nn.ReLU(),
            nn.MaxPool2d(kernel_size=pool[0], stride=pool[1], padding=pool[2]))  # fmt: skip

    def __init__(
        self, num_channels=64, growth_rate=32, arch=(4, 4, 4, 4), num_classes=10,
        stem=(7, 2, 3), pool=(3, 2, 1),
    ):  # fmt: skip
        super().__init__()
        self.net = nn.Sequential(self.b1(num_channels, stem, pool))
        for i, num_convs in enumerate(arch):
            self.net.add_module(f"dense_blk{i + 1}", DenseBlock(num_convs, growth_rate))
            # The number of output channels in the previous dense block
            num_channels += num_convs * growth_rate
            # A transition layer that halves the number of channels is added
            # between the dense blocks
            if i != len(arch) - 1:
                num_channels //= 2
                self.net.add_module(f"tran_blk{i + 1}", transition_block(num_channels))
        self.net.add_module(
            "last",
            nn.Sequential(
                nn.LazyBatchNorm2d(), nn.ReLU(), nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(),
                nn.LazyLinear(num_classes),
            ),
        )  # fmt: skip


def densenet(**kwargs):
    return DenseNet(**kwargs).net


# zoo option → (the book's network at the zoo's default size, at the book's size; the
# overrides that size the zoo option like the book; one sample's shape at the book's size)
SMALL = (1, 8, 8)
CNNS = {
    "lenet": (
        lambda: lenet(padding2=2), lenet,
        ["model.args.padding2=0", "model.input_shape=[1,28,28]"], (1, 28, 28),
    ),
    "bn_lenet": (
        lambda: bn_lenet(padding=2), bn_lenet,
        ["model.args.padding=0", "model.input_shape=[1,28,28]"], (1, 28, 28),
    ),
    "alexnet": (
        lambda: alexnet(div=16, stem=(3, 1, 1), pool_padding=1), alexnet,
        ["model.args.div=1", "model.args.stem=[11,4,1]", "model.args.pool_padding=0",
         "model.input_shape=[1,224,224]"], (1, 224, 224),
    ),
    "vgg": (
        lambda: vgg(arch=((1, 8), (1, 16), (2, 32)), fc=64), vgg,
        ["model.args.arch=[[1,64],[1,128],[2,256],[2,512],[2,512]]", "model.args.fc=4096",
         "model.input_shape=[1,224,224]"], (1, 224, 224),
    ),
    "nin": (
        lambda: nin(div=16, stem=(3, 1, 1), pool_padding=1), nin,
        ["model.args.div=1", "model.args.stem=[11,4,0]", "model.args.pool_padding=0",
         "model.input_shape=[1,224,224]"], (1, 224, 224),
    ),
    "googlenet": (
        lambda: googlenet(div=8, stem=(3, 1, 1)), googlenet,
        ["model.args.div=1", "model.args.stem=[7,2,3]", "model.input_shape=[1,96,96]"],
        (1, 96, 96),
    ),
    "resnet18": (
        lambda: resnet18(width=8, stem=(3, 1, 1)), resnet18,
        ["model.args.width=64", "model.args.stem=[7,2,3]", "model.input_shape=[1,96,96]"],
        (1, 96, 96),
    ),
    "densenet": (
        lambda: densenet(num_channels=8, growth_rate=4, stem=(3, 1, 1), pool=(1, 1, 0)),
        densenet,
        ["model.args.num_channels=64", "model.args.growth_rate=32",
         "model.args.transitions=[96,112,120]", "model.args.stem=[7,2,3]",
         "model.args.pool=[3,2,1]", "model.input_shape=[1,96,96]"], (1, 96, 96),
    ),
}  # fmt: skip
