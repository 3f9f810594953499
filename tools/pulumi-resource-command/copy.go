package main

// CopyToRemote's upload, as the official provider does it (copyController.go in
// pulumi/pulumi-command v1.2.1): over SFTP, straight to the destination (no temporary name),
// creating missing parent directories. A text asset becomes the file at remotePath; a file
// asset or file archive goes to remotePath, or into it when it is an existing directory; a
// directory archive is copied recursively (its contents only, when its path ends in "/").

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/pkg/sftp"
	"github.com/pulumi/pulumi/sdk/v3/go/common/diag"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

// sourceHash is CopyToRemoteInputs.hash (copy.go:77): the archive's hash, else the asset's.
func sourceHash(m resource.PropertyMap) string {
	src, _, _ := peel(m["source"])
	switch {
	case src.IsArchive():
		return src.ArchiveValue().Hash
	case src.IsAsset():
		return src.AssetValue().Hash
	}
	return ""
}

// upload is copyToRemote (copyController.go:157).
func upload(ctx context.Context, lg opLog, inputs resource.PropertyMap) error {
	conn, err := parseConnection(inputs["connection"])
	if err != nil {
		return err
	}
	remotePath := str(inputs, "remotePath")
	src, _, _ := peel(inputs["source"])
	var text *string
	var sourcePath string
	switch {
	case src.IsAsset() && src.AssetValue().IsText():
		t := src.AssetValue().Text
		text = &t
		lg.log(diag.Debug, fmt.Sprintf("Creating file: %s:%s from text asset", *conn.Host, remotePath))
	case src.IsAsset():
		sourcePath = src.AssetValue().Path
	case src.IsArchive():
		sourcePath = src.ArchiveValue().Path
	}
	if text == nil {
		lg.log(diag.Debug, fmt.Sprintf("Creating file: %s:%s from local file %s", *conn.Host, remotePath, sourcePath))
	}

	client, err := conn.dial(ctx, lg)
	if err != nil {
		return err
	}
	defer client.Close()
	sc, err := sftp.NewClient(client, sftp.UseConcurrentWrites(true))
	if err != nil {
		return err
	}
	defer sc.Close()
	if text != nil {
		return uploadText(sc, *text, remotePath)
	}
	return uploadPath(sc, sourcePath, remotePath)
}

// remoteStat returns nil, nil when path does not exist.
func remoteStat(sc *sftp.Client, path string) (fs.FileInfo, error) {
	info, err := sc.Stat(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("failed to stat remote path %s: %w", path, err)
	}
	return info, nil
}

func uploadText(sc *sftp.Client, content, dest string) error {
	info, err := remoteStat(sc, dest)
	if err != nil {
		return err
	}
	if info != nil && info.IsDir() {
		return fmt.Errorf("remote path %s is a directory; when using a text asset, remotePath must be a file path", dest)
	}
	if err := sc.MkdirAll(filepath.Dir(dest)); err != nil {
		return fmt.Errorf("failed to create parent directories for %s: %w", dest, err)
	}
	f, err := sc.Create(dest)
	if err != nil {
		return fmt.Errorf("failed to create remote file %s: %w", dest, err)
	}
	defer f.Close()
	if _, err := f.Write([]byte(content)); err != nil {
		return fmt.Errorf("failed to write text content to remote path %s: %w", dest, err)
	}
	return nil
}

// uploadPath is sftpCopy (copyController.go:203).
func uploadPath(sc *sftp.Client, source, dest string) error {
	src, err := os.Open(source)
	if err != nil {
		return err
	}
	defer src.Close()
	srcInfo, err := src.Stat()
	if err != nil {
		return err
	}
	destInfo, err := remoteStat(sc, dest)
	if err != nil {
		return err
	}
	if !srcInfo.IsDir() {
		switch {
		case destInfo != nil && destInfo.IsDir():
			dest = filepath.Join(dest, filepath.Base(source))
		case destInfo == nil:
			if err := sc.MkdirAll(filepath.Dir(dest)); err != nil {
				return fmt.Errorf("failed to create parent directories for %s: %w", dest, err)
			}
		}
		return uploadFile(sc, source, dest)
	}
	if destInfo == nil {
		if err := sc.MkdirAll(dest); err != nil {
			return fmt.Errorf("failed to create remote directory %s: %w", dest, err)
		}
	}
	if !strings.HasSuffix(source, "/") {
		dest = filepath.Join(dest, filepath.Base(source))
		info, err := remoteStat(sc, dest)
		if err != nil {
			return err
		}
		if info != nil && !info.IsDir() {
			return fmt.Errorf("remote path %s exists but is not a directory", dest)
		}
		if info == nil {
			if err := sc.Mkdir(dest); err != nil {
				return fmt.Errorf("failed to create remote directory %s: %w", dest, err)
			}
		}
	}
	return uploadDir(sc, source, dest)
}

func uploadFile(sc *sftp.Client, source, dest string) error {
	local, err := os.Open(source)
	if err != nil {
		return err
	}
	defer local.Close()
	remote, err := sc.Create(dest)
	if err != nil {
		return fmt.Errorf("failed to create remote file %s: %w", dest, err)
	}
	defer remote.Close()
	if _, err := remote.ReadFrom(local); err != nil {
		return fmt.Errorf("failed to copy file %s to remote path %s: %w", source, dest, err)
	}
	return nil
}

func uploadDir(sc *sftp.Client, source, dest string) error {
	return fs.WalkDir(os.DirFS(source), ".", func(rel string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		target := filepath.Join(dest, rel)
		if !d.IsDir() {
			return uploadFile(sc, filepath.Join(source, rel), target)
		}
		info, err := remoteStat(sc, target)
		if err != nil {
			return err
		}
		if info == nil {
			if err := sc.Mkdir(target); err != nil {
				return fmt.Errorf("failed to create remote directory %s: %w", target, err)
			}
		} else if !info.IsDir() {
			return fmt.Errorf("remote path %s exists but is not a directory", target)
		}
		return nil
	})
}
