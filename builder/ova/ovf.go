package ova

import (
	"encoding/xml"
	"fmt"
	"sort"
	"strings"
)

// streamOptimizedFormat is the disk format URI both VMware and VirtualBox
// recognise for a streamOptimized VMDK.
const streamOptimizedFormat = "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"

// OVF renders the OVF 1.0 descriptor for o, referring to the disk file
// diskName of diskFileSize bytes, applying the same defaults as Write.
// o.DiskCapacity must be set; o.VMDKPath is not used.
func OVF(o Options, diskName string, diskFileSize int64) ([]byte, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	if o.DiskCapacity <= 0 {
		return nil, fmt.Errorf("ova: DiskCapacity %d must be positive", o.DiskCapacity)
	}
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }

	p(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	p(`<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1"` +
		` xmlns:cim="http://schemas.dmtf.org/wbem/wscim/1/common"` +
		` xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"` +
		` xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"` +
		` xmlns:vmw="http://www.vmware.com/schema/ovf"` +
		` xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData"` +
		` xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"` +
		` ovf:version="1.0" xml:lang="en-US">` + "\n")

	p("  <References>\n")
	p("    <File ovf:href=%s ovf:id=\"file1\" ovf:size=\"%d\"/>\n", attr(diskName), diskFileSize)
	p("  </References>\n")

	p("  <DiskSection>\n    <Info>Virtual disk information</Info>\n")
	p("    <Disk ovf:capacity=\"%d\" ovf:capacityAllocationUnits=\"byte\" ovf:diskId=\"vmdisk1\" ovf:fileRef=\"file1\" ovf:format=%s", o.DiskCapacity, attr(streamOptimizedFormat))
	if o.VMDKPopulatedSize > 0 {
		p(" ovf:populatedSize=\"%d\"", o.VMDKPopulatedSize)
	}
	p("/>\n  </DiskSection>\n")

	p("  <NetworkSection>\n    <Info>The list of logical networks</Info>\n")
	p("    <Network ovf:name=\"VM Network\">\n      <Description>The VM Network network</Description>\n    </Network>\n")
	p("  </NetworkSection>\n")

	p("  <VirtualSystem ovf:id=%s>\n", attr(o.Name))
	p("    <Info>A virtual machine</Info>\n")
	p("    <Name>%s</Name>\n", text(o.Name))
	// 101 is the CIM id for 64-bit Linux; vmw:osType is what VMware uses.
	p("    <OperatingSystemSection ovf:id=\"101\" vmw:osType=%s>\n", attr(o.OSType))
	p("      <Info>The kind of installed guest operating system</Info>\n    </OperatingSystemSection>\n")

	// The transport lets vSphere hand ProductSection properties to the
	// guest both as guestinfo variables and as an OVF environment ISO.
	p("    <VirtualHardwareSection ovf:transport=\"com.vmware.guestInfo iso\">\n")
	p("      <Info>Virtual hardware requirements</Info>\n")
	p("      <System>\n")
	p("        <vssd:ElementName>Virtual Hardware Family</vssd:ElementName>\n")
	p("        <vssd:InstanceID>0</vssd:InstanceID>\n")
	p("        <vssd:VirtualSystemIdentifier>%s</vssd:VirtualSystemIdentifier>\n", text(o.Name))
	p("        <vssd:VirtualSystemType>%s</vssd:VirtualSystemType>\n", text(o.HardwareVersion))
	p("      </System>\n")

	id := 0
	item := func(fields map[string]string) {
		id++
		fields["InstanceID"] = fmt.Sprint(id)
		// The CIM schema is a sequence in alphabetical order; strict
		// validators (ovftool) reject items whose elements are not sorted.
		keys := make([]string, 0, len(fields))
		for k := range fields {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		p("      <Item>\n")
		for _, k := range keys {
			p("        <rasd:%s>%s</rasd:%s>\n", k, text(fields[k]), k)
		}
		p("      </Item>\n")
	}
	item(map[string]string{
		"AllocationUnits": "hertz * 10^6",
		"Description":     "Number of Virtual CPUs",
		"ElementName":     fmt.Sprintf("%d virtual CPU(s)", o.CPUs),
		"ResourceType":    "3",
		"VirtualQuantity": fmt.Sprint(o.CPUs),
	})
	item(map[string]string{
		"AllocationUnits": "byte * 2^20",
		"Description":     "Memory Size",
		"ElementName":     fmt.Sprintf("%dMB of memory", o.MemoryMiB),
		"ResourceType":    "4",
		"VirtualQuantity": fmt.Sprint(o.MemoryMiB),
	})
	switch o.Controller {
	case "sata":
		item(map[string]string{
			"Address":         "0",
			"Description":     "SATA Controller",
			"ElementName":     "SATA Controller 0",
			"ResourceSubType": "AHCI",
			"ResourceType":    "20",
		})
	default:
		sub := map[string]string{"lsilogic": "lsilogic", "pvscsi": "VirtualSCSI"}[o.Controller]
		item(map[string]string{
			"Address":         "0",
			"Description":     "SCSI Controller",
			"ElementName":     "SCSI Controller 0",
			"ResourceSubType": sub,
			"ResourceType":    "6",
		})
	}
	controller := id
	item(map[string]string{
		"AddressOnParent": "0",
		"ElementName":     "Hard Disk 1",
		"HostResource":    "ovf:/disk/vmdisk1",
		"Parent":          fmt.Sprint(controller),
		"ResourceType":    "17",
	})
	nicSub := map[string]string{"vmxnet3": "VmxNet3", "E1000": "E1000"}[o.NICType]
	for i := 1; i <= o.NICs; i++ {
		item(map[string]string{
			"AutomaticAllocation": "true",
			"Connection":          "VM Network",
			"Description":         nicSub + " ethernet adapter on VM Network",
			"ElementName":         fmt.Sprintf("Network adapter %d", i),
			"ResourceSubType":     nicSub,
			"ResourceType":        "10",
		})
	}
	if o.UEFI {
		p("      <vmw:Config ovf:required=\"false\" vmw:key=\"firmware\" vmw:value=\"efi\"/>\n")
	}
	p("    </VirtualHardwareSection>\n")

	p("    <ProductSection>\n")
	p("      <Info>Information about the installed software and its settings</Info>\n")
	p("      <Product>%s</Product>\n", text(o.Product))
	if o.Version != "" {
		p("      <Version>%s</Version>\n", text(o.Version))
	}
	for _, pr := range o.Properties {
		p("      <Property ovf:key=%s ovf:type=%s ovf:userConfigurable=\"%t\" ovf:value=%s>\n",
			attr(pr.Key), attr(pr.Type), pr.UserConfigurable, attr(pr.Default))
		if pr.Label != "" {
			p("        <Label>%s</Label>\n", text(pr.Label))
		}
		if pr.Description != "" {
			p("        <Description>%s</Description>\n", text(pr.Description))
		}
		p("      </Property>\n")
	}
	p("    </ProductSection>\n")
	p("  </VirtualSystem>\n")
	p("</Envelope>\n")
	return []byte(b.String()), nil
}

// text escapes s for XML character data.
func text(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

// attr quotes and escapes s as an XML attribute value.
func attr(s string) string { return `"` + text(s) + `"` }
