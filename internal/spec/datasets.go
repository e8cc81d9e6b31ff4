package spec

// The built-in datasets. A new dataset is a RegisterDataset call in its own
// file (here, or beside its reader in internal/data) and its reader in
// internal/data (data.RegisterReader).

// IDXFiles are the four files of an MNIST-style dataset.
var IDXFiles = []string{
	"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
	"t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
}

const cifarHint = "CIFAR is not shipped by any package manager here: place the binary version's files " +
	"(data_batch_1.bin … data_batch_5.bin, test_batch.bin for CIFAR-10; train.bin, test.bin for CIFAR-100) under data.dir/<dataset>/"

func init() {
	// SHA-256 of the files as shipped by their packages (measured on GoMNIST
	// v0.0.0-20150320212226-2fbe10d0fa63 and Debian dataset-fashion-mnist).
	RegisterDataset(Dataset{Name: "mnist", Train: 60000, Shape: Fixed(1, 28, 28, 10), PixelScale: 1.0 / 255, Source: FetchGoModule,
		Files: map[string]string{
			"train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
			"train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
			"t10k-images-idx3-ubyte.gz":  "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
			"t10k-labels-idx1-ubyte.gz":  "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
		}})
	RegisterDataset(Dataset{Name: "fashion-mnist", Train: 60000, Shape: Fixed(1, 28, 28, 10), PixelScale: 1.0 / 255, Source: FetchDebian,
		Files: map[string]string{
			"train-images-idx3-ubyte.gz": "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
			"train-labels-idx1-ubyte.gz": "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
			"t10k-images-idx3-ubyte.gz":  "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
			"t10k-labels-idx1-ubyte.gz":  "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
		}})
	RegisterDataset(Dataset{Name: "cifar10", Train: 50000, Shape: Fixed(3, 32, 32, 10), PixelScale: 1.0 / 255, Source: FetchManual, Hint: cifarHint})
	RegisterDataset(Dataset{Name: "cifar100", Train: 50000, Shape: Fixed(3, 32, 32, 100), PixelScale: 1.0 / 255, Source: FetchManual, Hint: cifarHint})
	RegisterDataset(Dataset{Name: "synthetic", Shape: SquareOrRow, PixelScale: 1, Source: FetchNone})
}
